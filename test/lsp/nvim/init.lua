-- The Neovim setup of server/src/lsp/README.md (Neovim 0.7+), tested as it is written there
-- except for `cmd`, which here runs the repository's build.
local cmd = os.getenv('SYNBAL_SERVER') and { 'node', os.getenv('SYNBAL_SERVER'), '--stdio' } or { 'synbal-lsp', '--stdio' }

local synbal_id
local function synbal_client()
  synbal_id = synbal_id or vim.lsp.start_client({
    name = 'synbal',
    cmd = cmd,
    root_dir = vim.fn.getcwd(),
    settings = { synapticBalance = { tolerance = 1e-3, settleMs = 0 } },
  })
  return synbal_id
end

vim.api.nvim_create_autocmd('BufReadPost', {
  pattern = { '*.onnx', '*.pt', '*.pth', '*.bin', '*.safetensors', '*.json', '*.h5', '*.keras', '*.npy', '*.npz' },
  callback = function(args) vim.lsp.buf_attach_client(args.buf, synbal_client()) end,
})

-- :SynbalListing shows the current checkpoint's listing; its diagnostics, hover (K), code
-- actions and code lenses work there.
vim.api.nvim_create_user_command('SynbalListing', function()
  local client = vim.lsp.get_client_by_id(synbal_client())
  local res = client.request_sync('synbal/listing', { uri = vim.uri_from_bufnr(0) }, 30000, 0)
  if not res or res.err then return vim.notify('synbal: no listing', vim.log.levels.ERROR) end
  local buf = vim.uri_to_bufnr(res.result.uri)
  vim.bo[buf].buftype = 'nofile'
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, vim.split(res.result.text, '\n'))
  vim.bo[buf].modifiable = false
  vim.api.nvim_set_current_buf(buf)
  vim.lsp.buf_attach_client(buf, client.id)
end, {})
