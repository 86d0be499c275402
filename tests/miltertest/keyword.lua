-- OpenDKIM's miltertest drives the menshen daemon over the milter protocol, as Postfix
-- would: a clean message is accepted with menshen's verdict header, a message hiding a
-- keyword (GBK, base64) is refused with the configured 550 reply.
-- Run: miltertest -D socket=unix:/path/menshen.sock -s tests/miltertest/keyword.lua

local sock = socket or error("pass -D socket=unix:/path/to/menshen.sock")

local function message(conn, subject, headers, body)
  assert(mt.conninfo(conn, "client.example", "192.0.2.10") == nil, "conninfo")
  assert(mt.helo(conn, "client.example") == nil, "helo")
  assert(mt.mailfrom(conn, "<alice@sender.example>") == nil, "mailfrom")
  assert(mt.rcptto(conn, "<bob@example.com>") == nil, "rcptto")
  assert(mt.header(conn, "From", "alice@sender.example") == nil, "header From")
  assert(mt.header(conn, "Subject", subject) == nil, "header Subject")
  for name, value in pairs(headers) do
    assert(mt.header(conn, name, value) == nil, "header " .. name)
  end
  -- menshen does not ask for the end-of-headers step (SMFIP_NOEOH); Postfix skips it too.
  if not mt.test_option(conn, SMFIP_NOEOH) then
    assert(mt.eoh(conn) == nil, "eoh")
  end
  assert(mt.bodystring(conn, body) == nil, "body")
  assert(mt.eom(conn) == nil, "eom")
end

local function case(name, fn)
  local conn = mt.connect(sock, 20, 0.1)
  if conn == nil then error(name .. ": cannot connect to " .. sock) end
  local ok, err = pcall(fn, conn)
  mt.disconnect(conn)
  if ok then mt.echo("ok: " .. name) else mt.echo("FAIL: " .. name .. ": " .. tostring(err)) end
  return ok
end

local failures = 0

if not case("clean message is accepted with the verdict header", function(conn)
  message(conn, "hello", {}, "Meeting moved to 3pm.\r\n")
  assert(mt.getreply(conn) == SMFIR_ACCEPT, "expected accept")
  assert(mt.eom_check(conn, MT_HDRADD, "X-Menshen-Verdict"), "expected X-Menshen-Verdict")
end) then failures = failures + 1 end

-- 代开发票 in GBK, base64: "请联系我们代开发票" encoded by the sender's mail client.
if not case("keyword in a GBK base64 body is rejected with 550", function(conn)
  message(conn, "offer", {
    ["MIME-Version"] = "1.0",
    ["Content-Type"] = "text/plain; charset=gbk",
    ["Content-Transfer-Encoding"] = "base64",
  }, "x+vBqs+1ztLDx7T6v6q3osax\r\n")
  assert(mt.getreply(conn) == SMFIR_REPLYCODE, "expected a reply code")
  assert(mt.eom_check(conn, MT_SMTPREPLY, "550", "5.7.1",
    "Message rejected by content policy: keyword category invoice_fraud"),
    "expected the 550 5.7.1 policy reply")
end) then failures = failures + 1 end

if failures > 0 then error(failures .. " case(s) failed") end
