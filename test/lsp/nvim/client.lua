-- Neovim 0.7 as an independent LSP client: attach synbal-lsp to the opened model file, wait
-- for its diagnostics, print them and those of its listing, then quit (exit 1 on timeout).
local buf = vim.api.nvim_get_current_buf()
local id = vim.lsp.start_client({
  name = 'synbal',
  cmd = { 'node', os.getenv('SYNBAL_SERVER'), '--stdio' },
  root_dir = os.getenv('SYNBAL_ROOT'),
  -- Answers the server's workspace/configuration requests.
  settings = { synapticBalance = { pollIntervalMs = 100, settleMs = 0 } },
})
vim.lsp.buf_attach_client(buf, id)
local listing = vim.uri_to_bufnr((vim.uri_from_bufnr(buf):gsub('^file:', 'synbal-listing:')) .. '.listing')
local ok = vim.wait(30000, function()
  return #vim.diagnostic.get(buf) > 0 and #vim.diagnostic.get(listing) > 0
end, 50)
local function code(d)
  return d.code or (d.user_data and d.user_data.lsp and d.user_data.lsp.code) or ''
end
for _, d in ipairs(vim.diagnostic.get(buf)) do
  io.stdout:write(('DIAG %d:%d %s %s\n'):format(d.lnum + 1, d.col + 1, code(d), d.message))
end
for _, d in ipairs(vim.diagnostic.get(listing)) do
  io.stdout:write(('LISTING %d:%d %s %s\n'):format(d.lnum + 1, d.col + 1, code(d), d.message))
end
vim.cmd(ok and 'qa!' or 'cq')
