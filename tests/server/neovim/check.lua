-- Opens SPEC as a user would, waits for the server's diagnostics, asks a hover and (where the client
-- has them) the inlay hints, and writes what it got to OUT as JSON.
vim.cmd("edit " .. vim.env.SPEC)
local found = { filetype = vim.bo.filetype, version = vim.version() }
vim.wait(60000, function() return #vim.diagnostic.get(0) > 0 end, 50)
found.diagnostics = {}
for _, d in ipairs(vim.diagnostic.get(0)) do
  table.insert(found.diagnostics, { line = d.lnum + 1, col = d.col, message = d.message, severity = d.severity })
end
local params = { textDocument = { uri = vim.uri_from_bufnr(0) }, position = { line = 1, character = 1 } }
local replies = vim.lsp.buf_request_sync(0, "textDocument/hover", params, 30000) or {}
for _, reply in pairs(replies) do
  if reply.result then found.hover = reply.result.contents.value end
end
if vim.lsp.inlay_hint and vim.lsp.inlay_hint.get then
  vim.wait(30000, function() return #vim.lsp.inlay_hint.get({ bufnr = 0 }) > 0 end, 50)
  found.hints = {}
  for _, item in ipairs(vim.lsp.inlay_hint.get({ bufnr = 0 })) do
    local label = item.inlay_hint.label
    table.insert(found.hints, { line = item.inlay_hint.position.line + 1, label = type(label) == "string" and label or label[1].value })
  end
end
vim.fn.writefile({ vim.fn.json_encode(found) }, vim.env.OUT)
vim.cmd("qa!")
