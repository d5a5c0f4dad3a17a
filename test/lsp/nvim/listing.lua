-- With init.lua loaded: wait for the model's diagnostics, open its listing, and print what a
-- user would see there: the buffer, its diagnostics, a hover and the code actions on a unit.
local buf = vim.api.nvim_get_current_buf()
vim.wait(30000, function() return #vim.diagnostic.get(buf) > 0 end, 50)
vim.cmd('SynbalListing')
local lb = vim.api.nvim_get_current_buf()
io.stdout:write(('BUFFER %s %d %d\n'):format(vim.api.nvim_buf_get_name(lb), vim.api.nvim_buf_line_count(lb), #vim.diagnostic.get(lb)))
local unit
for _, d in ipairs(vim.diagnostic.get(lb)) do
  if d.message:match('^h1#9 ') then unit = d end
end
local pos = { line = unit.lnum, character = unit.col }
local doc = { uri = vim.uri_from_bufnr(lb) }
for _, v in pairs(vim.lsp.buf_request_sync(lb, 'textDocument/hover', { textDocument = doc, position = pos }, 5000) or {}) do
  io.stdout:write('HOVER ' .. vim.split(v.result.contents.value, '\n')[1] .. '\n')
end
local ctx = { diagnostics = vim.lsp.diagnostic.get_line_diagnostics(lb, unit.lnum) }
for _, v in pairs(vim.lsp.buf_request_sync(lb, 'textDocument/codeAction', { textDocument = doc, range = { start = pos, ['end'] = pos }, context = ctx }, 5000) or {}) do
  for _, a in ipairs(v.result or {}) do io.stdout:write(('ACTION %s | %s\n'):format(a.title, a.command and a.command.command or '-')) end
end
vim.cmd('qa!')
