/* src/dist/redis_scripts.h -- the Lua scripts of the Redis backend
 * (redis.c). Each operation is one script, so it is atomic on the server
 * and one round trip for the client, however many items it carries.
 *
 * Keys (every name is the queue's or map's own, binary safe):
 *   corio:ids          the task id counter (INCRBY)
 *   corio:q:<queue>    the queue: a stream read through the consumer group
 *                      "corio" (XREADGROUP leases, XAUTOCLAIM reclaims);
 *                      a task's entry id is "0-<task id>", or, where the
 *                      stream's ids have moved past that (a dead-letter
 *                      stream fed out of order), "*" with the id in field
 *                      "i" and the entry id in corio:qx:<queue>
 *   corio:qx:<queue>   hash: task id -> entry id, for the "*" entries
 *   corio:qz:<queue>   exists once the queue is closed
 *   corio:qw:<queue>   wake tokens: a put pushes one per task (a nack
 *                      one), a take pops one per task it gets; a taker
 *                      with nothing to take waits in BLPOP for one, so a
 *                      put of n tasks wakes n takers, not all of them
 *   corio:qzw:<queue>  the close token: every waiting taker pops it and
 *                      pushes it back for the next
 *   corio:qd:<queue>   the count of entries acked but still in the
 *                      stream (an ack trims the stream's head in whole
 *                      nodes: XTRIM MINID ~ below the first leased one)
 *   corio:qr:<queue>   exists (100 ms) after a take looked for expired
 *                      leases: they are looked for at most that often
 *   corio:r:<id>       a task's result (SET by the first ack only; a
 *                      result_take deletes it)
 *   corio:done:<n>     bitmaps: bit id % 2^20 of corio:done:<id / 2^20> is
 *                      set once task id was acked (a later ack is dropped;
 *                      a taken result is ENOENT): 128 KiB per 2^20 tasks
 *   corio:rw:<id>      the wait keys (space-separated, the last 8) of
 *                      the calls waiting for task id's result; its ack
 *                      pushes on each and deletes the key
 *   corio:rn:<consumer>:<n>  a wait key: a list, for one call's BLPOP
 *   corio:m:<map>      a map: a hash
 * A queue "<name>.dead" is name's dead-letter queue. */
#ifndef CORIO_DIST_REDIS_SCRIPTS_H
#define CORIO_DIST_REDIS_SCRIPTS_H

/* Where the "acked" bit of task id is: a key per 2^20 ids. */
#define CORIO__LUA_DONE                                                        \
    "local done_b, done_k\n"                                                   \
    "local function done(id)\n"                                                \
    "  local n = tonumber(id)\n"                                               \
    "  local b = math.floor(n / 1048576)\n"                                    \
    "  if b ~= done_b then\n"                                                  \
    "    done_b, done_k = b, 'corio:done:' .. string.format('%d', b)\n"        \
    "  end\n"                                                                  \
    "  return done_k, n % 1048576\n"                                           \
    "end\n"

/* Register wait key wk for the results of ids (a list): appended to
 * their corio:rw:<id> (the last 8 kept). */
#define CORIO__LUA_REGISTER                                                    \
    "local function register(ids, wk)\n"                                       \
    "  for i = 1, #ids, 512 do\n"                                              \
    "    local k = {}\n"                                                       \
    "    for j = i, math.min(i + 511, #ids) do k[#k + 1] = 'corio:rw:' .. ids[j] end\n" \
    "    local old = redis.call('MGET', unpack(k))\n"                          \
    "    local f = {}\n"                                                       \
    "    for j, key in ipairs(k) do\n"                                         \
    "      local v = wk\n"                                                     \
    "      if old[j] then\n"                                                   \
    "        v = old[j] .. ' ' .. wk\n"                                        \
    "        local _, spaces = string.gsub(v, ' ', '')\n"                      \
    "        if spaces >= 8 then v = string.sub(v, string.find(v, ' ') + 1) end\n" \
    "      end\n"                                                              \
    "      f[#f + 1] = key f[#f + 1] = v\n"                                    \
    "    end\n"                                                                \
    "    redis.call('MSET', unpack(f))\n"                                      \
    "  end\n"                                                                  \
    "end\n"

/* What the queue scripts start with. */
#define CORIO__LUA_COMMON                                                      \
    CORIO__LUA_DONE                                                            \
    "local G = 'corio'\n"                                                      \
    "local function skey(q) return 'corio:q:' .. q end\n"                     \
    "local function field(e, name)\n"                                          \
    "  local f = e[2]\n"                                                       \
    "  for i = 1, #f, 2 do if f[i] == name then return f[i + 1] end end\n"     \
    "  return nil\n"                                                           \
    "end\n"                                                                    \
    /* an entry's task id: its id's sequence, or field i (added as "*") */ \
    "local function idof(e)\n"                                                \
    "  local f = e[2]\n"                                                      \
    "  if f[3] == 'i' then return f[4] end\n"                                 \
    "  return field(e, 'i') or string.sub(e[1], 3)\n"                         \
    "end\n"                                                                   \
    /* stream ids "ms-seq": a < b */                                         \
    "local function idless(a, b)\n"                                           \
    "  local am, as = string.match(a, '^(%d+)-(%d+)$')\n"                     \
    "  local bm, bs = string.match(b, '^(%d+)-(%d+)$')\n"                     \
    "  am, bm = tonumber(am), tonumber(bm)\n"                                 \
    "  return am < bm or (am == bm and tonumber(as) < tonumber(bs))\n"        \
    "end\n"                                                                   \
    /* the entry id of task id in queue q */                                   \
    "local function eidof(q, id)\n"                                            \
    "  return redis.call('HGET', 'corio:qx:' .. q, id) or ('0-' .. id)\n"      \
    "end\n"                                                                    \
    "local function ensure(q)\n"                                               \
    "  local s = skey(q)\n"                                                    \
    "  if redis.call('EXISTS', s) == 0 then\n"                                 \
    "    redis.call('XGROUP', 'CREATE', s, G, '0', 'MKSTREAM')\n"              \
    "  end\n"                                                                  \
    "  return s\n"                                                             \
    "end\n"                                                                    \
    /* add task id to queue q, its stream s made (ensure) */                  \
    "local function add(q, s, id, data)\n"                                     \
    "  local r = redis.pcall('XADD', s, '0-' .. id, 'd', data)\n"              \
    "  if type(r) == 'table' and r.err then\n"                                 \
    "    local eid = redis.call('XADD', s, '*', 'd', data, 'i', id)\n"         \
    "    redis.call('HSET', 'corio:qx:' .. q, id, eid)\n"                      \
    "  end\n"                                                                  \
    "end\n"                                                                    \
    /* the task leaves the queue for good */                                   \
    "local function drop(q, eid, id)\n"                                        \
    "  local s = skey(q)\n"                                                    \
    "  redis.call('XACK', s, G, eid)\n"                                        \
    "  redis.call('XDEL', s, eid)\n"                                           \
    "  if eid ~= '0-' .. id then redis.call('HDEL', 'corio:qx:' .. q, id) end\n" \
    "end\n"                                                                    \
    /* wake up to #tokens waiting takers; at most 256 tokens wait */          \
    "local function wake(q, tokens)\n"                                         \
    "  local k = 'corio:qw:' .. q\n"                                           \
    "  redis.call('RPUSH', k, unpack(tokens))\n"                               \
    "  redis.call('LTRIM', k, -256, -1)\n"                                     \
    "end\n"                                                                    \
    "local function deadletter(q, e)\n"                                        \
    "  local id = idof(e)\n"                                                   \
    "  local dq = q .. '.dead'\n"                                              \
    "  add(dq, ensure(dq), id, field(e, 'd') or '')\n"                         \
    "  drop(q, e[1], id)\n"                                                    \
    "end\n"

/* put: ARGV queue, payload... -> the first id (the others follow). */
#define CORIO__LUA_PUT                                                         \
    CORIO__LUA_COMMON                                                          \
    "local q = ARGV[1]\n"                                                      \
    "if redis.call('EXISTS', 'corio:qz:' .. q) == 1 then\n"                    \
    "  return redis.error_reply('CLOSED queue closed')\n"                      \
    "end\n"                                                                    \
    "local n = #ARGV - 1\n"                                                    \
    "local first = redis.call('INCRBY', 'corio:ids', n) - n + 1\n"             \
    "local s = ensure(q)\n"                                                    \
    "local tokens = {}\n"                                                      \
    "for i = 1, n do\n"                                                        \
    "  add(q, s, string.format('%d', first + i - 1), ARGV[i + 1])\n"           \
    "  if i <= 64 then tokens[i] = '1' end\n"                                  \
    "end\n"                                                                    \
    "wake(q, tokens)\n"                                                                    \
    "return first\n"

/* take/get: ARGV queue, lease (1/0), consumer, lease ms, max,
 * max deliveries -> {n, id, data, deliveries, ...}; n 0: nothing now
 * (wait for a wake token). Expired leases are reclaimed first (XAUTOCLAIM, at
 * most every 100 ms per queue), the over-delivered ones go to the
 * dead-letter queue; a get (lease 0) removes what it returns. */
#define CORIO__LUA_TAKE                                                        \
    CORIO__LUA_COMMON                                                          \
    "local q, lease, cons = ARGV[1], ARGV[2] == '1', ARGV[3]\n"                \
    "local max, maxdel = tonumber(ARGV[5]), tonumber(ARGV[6])\n"               \
    "local s = skey(q)\n"                                                      \
    "local out, n = {0}, 0\n"                                              \
    "local function emit(e, count)\n"                                          \
    "  local id = idof(e)\n"                                                   \
    "  if not lease then drop(q, e[1], id) count = 0 end\n"                    \
    "  out[#out + 1] = id\n"                                                   \
    "  out[#out + 1] = field(e, 'd') or ''\n"                                  \
    "  out[#out + 1] = count\n"                                                \
    "  n = n + 1\n"                                                            \
    "end\n"                                                                    \
    "if redis.call('EXISTS', s) == 1 then\n"                                   \
    "  if redis.call('SET', 'corio:qr:' .. q, '1', 'PX', 100, 'NX') then\n"     \
    "    local r = redis.call('XAUTOCLAIM', s, G, cons, ARGV[4], '0-0',\n"     \
    "                         'COUNT', max)\n"                                 \
    "    for _, e in ipairs(r[2]) do\n"                                        \
    "      local p = redis.call('XPENDING', s, G, e[1], e[1], 1)\n"            \
    "      if #p > 0 and p[1][4] > maxdel then deadletter(q, e)\n"             \
    "      elseif #p > 0 then emit(e, p[1][4]) end\n"                          \
    "    end\n"                                                                \
    "  end\n"                                                                  \
    "  if n < max then\n"                                                      \
    "    local r = redis.call('XREADGROUP', 'GROUP', G, cons, 'COUNT',\n"      \
    "                         max - n, 'STREAMS', s, '>')\n"                   \
    "    if r then for _, e in ipairs(r[1][2]) do emit(e, 1) end end\n"        \
    "  end\n"                                                                  \
    "end\n"                                                                    \
    "if n == 0 and redis.call('EXISTS', 'corio:qz:' .. q) == 1 then\n"         \
    "  return redis.error_reply('CLOSED queue closed')\n"                      \
    "end\n"                                                                    \
    "if n > 0 then redis.call('LPOP', 'corio:qw:' .. q, n) end\n"                                                                    \
    "out[1] = n\n"                                                             \
    "return out\n"

/* ack: ARGV queue, id, result, id, result... -> the count of unknown ids.
 * The result is recorded by the first ack only (the done bit says which
 * came first); the task leaves the queue (even if another taker holds it
 * now). The usual batch (every task leased, none repeated) costs a few
 * calls whatever its size: one XACK, one XDEL, one BITFIELD per 2^20 ids,
 * one MSET, one EXISTS; anything else falls back to a call per task. */
#define CORIO__LUA_ACK                                                         \
    CORIO__LUA_COMMON                                                          \
    /* redis.call(cmd, key, [extra,] list...) in slices (Lua's unpack has  \
     * a limit); f(reply) for each slice's reply */                        \
    "local function sliced(cmd, key, extra, list, f)\n"                        \
    "  for i = 1, #list, 512 do\n"                                             \
    "    local j = math.min(i + 511, #list)\n"                                 \
    "    if extra then f(redis.call(cmd, key, extra, unpack(list, i, j)))\n"   \
    "    else f(redis.call(cmd, key, unpack(list, i, j))) end\n"               \
    "  end\n"                                                                  \
    "end\n"                                                                    \
    "local q = ARGV[1]\n"                                                      \
    "local s = skey(q)\n"                                                      \
    "local n = (#ARGV - 1) / 2\n"                                              \
    "local unknown = 0\n"                                                      \
    /* entries added out of order are rare: look them up only if any */      \
    "local mapped = redis.call('EXISTS', 'corio:qx:' .. q) == 1\n"             \
    "local eids, here = {}, {}\n"                                              \
    "for i = 1, n do\n"                                                        \
    "  local id = ARGV[2 * i]\n"                                               \
    "  eids[i] = mapped and eidof(q, id) or ('0-' .. id)\n"                    \
    "end\n"                                                                    \
    /* all leased and distinct: XACK says so for the batch. Otherwise an  \
     * entry still in the stream is here (XDEL says, one by one). */        \
    "local acked = 0\n"                                                        \
    "sliced('XACK', s, G, eids, function(r) acked = acked + r end)\n"          \
    "if acked == n then\n"                                                     \
    "  for i = 1, n do here[i] = true end\n"                                   \
    /* kept, counted in qd, and trimmed from the stream's head in whole   \
     * nodes (XTRIM MINID ~: an XDEL per entry costs a scan of its node):  \
     * below the first pending entry and the last one acked, every entry  \
     * was delivered and is done */                                        \
    "  local qd = 'corio:qd:' .. q\n"                                        \
    "  redis.call('INCRBY', qd, n)\n"                                        \
    "  local x\n"                                                            \
    "  if mapped then\n"                                                     \
    "    local top = eids[1]\n"                                              \
    "    for i = 2, n do if idless(top, eids[i]) then top = eids[i] end end\n" \
    "    local ms, seq = string.match(top, '^(%d+)-(%d+)$')\n"               \
    "    x = ms .. '-' .. string.format('%.0f', tonumber(seq) + 1)\n"        \
    "  else\n"                                                               \
    "    local top = 0\n"                                                    \
    "    for i = 1, n do\n"                                                  \
    "      local v = tonumber(ARGV[2 * i])\n"                                \
    "      if v > top then top = v end\n"                                    \
    "    end\n"                                                              \
    "    x = '0-' .. string.format('%.0f', top + 1)\n"                       \
    "  end\n"                                                                \
    "  local p = redis.call('XPENDING', s, G, '-', '+', 1)\n"                \
    "  if #p > 0 and idless(p[1][1], x) then x = p[1][1] end\n"              \
    "  local t = redis.call('XTRIM', s, 'MINID', '~', x)\n"                  \
    "  if t > 0 then redis.call('DECRBY', qd, t) end\n"                      \
    "else\n"                                                                   \
    /* one by one; an entry deleted here that was delivered (at most the \
     * group's last delivered id) was leased (acked just now: acked of    \
     * them) or kept by an earlier ack (counted in qd: uncounted) */       \
    "  local last = '0-0'\n"                                                   \
    "  if acked < n and redis.call('EXISTS', s) == 1 then\n"                   \
    "    for _, g in ipairs(redis.call('XINFO', 'GROUPS', s)) do\n"            \
    "      local f = {}\n"                                                     \
    "      for k = 1, #g, 2 do f[g[k]] = g[k + 1] end\n"                       \
    "      if f['name'] == G then last = f['last-delivered-id'] end\n"         \
    "    end\n"                                                                \
    "  end\n"                                                                  \
    "  local delivered = 0\n"                                                  \
    "  for i = 1, n do\n"                                                      \
    "    here[i] = redis.call('XDEL', s, eids[i]) == 1\n"                      \
    "    if here[i] and not idless(last, eids[i]) then\n"                      \
    "      delivered = delivered + 1\n"                                        \
    "    end\n"                                                                \
    "  end\n"                                                                  \
    "  if delivered > acked then\n"                                            \
    "    redis.call('DECRBY', 'corio:qd:' .. q, delivered - acked)\n"          \
    "  end\n"                                                                  \
    "end\n"                                                                    \
    "if mapped then\n"                                                         \
    "  for i = 1, n do\n"                                                      \
    "    if here[i] and eids[i] ~= '0-' .. ARGV[2 * i] then\n"                 \
    "      redis.call('HDEL', 'corio:qx:' .. q, ARGV[2 * i])\n"                \
    "    end\n"                                                                \
    "  end\n"                                                                  \
    "end\n"                                                                    \
    /* set the done bits of those here, a BITFIELD per bitmap: the old bit \
     * 0 says this ack is the first (it records the result) */              \
    "local bykey, order = {}, {}\n"                                            \
    "for i = 1, n do\n"                                                        \
    "  if here[i] then\n"                                                      \
    "    local dk, bit = done(ARGV[2 * i])\n"                                  \
    "    local g = bykey[dk]\n"                                                \
    "    if not g then g = {args = {}, idx = {}} bykey[dk] = g\n"              \
    "      order[#order + 1] = dk end\n"                                       \
    "    local a = g.args\n"                                                   \
    "    a[#a + 1] = 'SET' a[#a + 1] = 'u1' a[#a + 1] = bit a[#a + 1] = '1'\n" \
    "    g.idx[#g.idx + 1] = i\n"                                              \
    "  end\n"                                                                  \
    "end\n"                                                                    \
    "local rec, recids = {}, {}\n"                                             \
    "for _, dk in ipairs(order) do\n"                                          \
    "  local g = bykey[dk]\n"                                                  \
    "  local k = 0\n"                                                          \
    "  for i = 1, #g.args, 2048 do\n"                                          \
    "    local old = redis.call('BITFIELD', dk,\n"                             \
    "                           unpack(g.args, i, math.min(i + 2047, #g.args)))\n" \
    "    for _, v in ipairs(old) do\n"                                         \
    "      k = k + 1\n"                                                        \
    "      if v == 0 then\n"                                                   \
    "        local id = ARGV[2 * g.idx[k]]\n"                                  \
    "        rec[#rec + 1] = 'corio:r:' .. id\n"                               \
    "        rec[#rec + 1] = ARGV[2 * g.idx[k] + 1]\n"                         \
    "        recids[#recids + 1] = id\n"                                       \
    "      end\n"                                                              \
    "    end\n"                                                                \
    "  end\n"                                                                  \
    "end\n"                                                                    \
    "for i = 1, #rec, 1024 do\n"                                               \
    "  redis.call('MSET', unpack(rec, i, math.min(i + 1023, #rec)))\n"         \
    "end\n"                                                                    \
    /* wake whoever waits for these results: their wait keys are in   \
     * corio:rw:<id> (one MGET for the batch) */                           \
    "if #recids > 0 then\n"                                                   \
    "  local woken = {}\n"                                                    \
    "  for i = 1, #recids, 512 do\n"                                          \
    "    local k = {}\n"                                                      \
    "    for j = i, math.min(i + 511, #recids) do\n"                          \
    "      k[#k + 1] = 'corio:rw:' .. recids[j]\n"                            \
    "    end\n"                                                               \
    "    local hit = {}\n"                                                    \
    "    for j, v in ipairs(redis.call('MGET', unpack(k))) do\n"              \
    "      if v then\n"                                                       \
    "        hit[#hit + 1] = k[j]\n"                                          \
    "        for key in string.gmatch(v, '%S+') do\n"                         \
    "          if not woken[key] then\n"                                      \
    "            woken[key] = true\n"                                         \
    "            redis.call('RPUSH', key, '1')\n"                             \
    "            redis.call('EXPIRE', key, 60)\n"                             \
    "          end\n"                                                         \
    "        end\n"                                                           \
    "      end\n"                                                             \
    "    end\n"                                                               \
    "    if #hit > 0 then redis.call('DEL', unpack(hit)) end\n"               \
    "  end\n"                                                                 \
    "end\n"                                                                   \
    /* those not here: unknown unless acked before */                        \
    "for i = 1, n do\n"                                                        \
    "  if not here[i] then\n"                                                  \
    "    local dk, bit = done(ARGV[2 * i])\n"                                  \
    "    if redis.call('GETBIT', dk, bit) == 0 then unknown = unknown + 1 end\n" \
    "  end\n"                                                                  \
    "end\n"                                                                    \
    "return unknown\n"

/* nack / touch: ARGV queue, id, consumer, max deliveries, touch (1/0) ->
 * 0, or -1 if the task is not leased. A nack makes the lease expired now
 * (or dead-letters a task delivered max times); a touch renews it. */
#define CORIO__LUA_RELEASE                                                     \
    CORIO__LUA_COMMON                                                          \
    "local q, id = ARGV[1], ARGV[2]\n"                                         \
    "local s = skey(q)\n"                                                      \
    "if redis.call('EXISTS', s) == 0 then return -1 end\n"                     \
    "local eid = eidof(q, id)\n"                                               \
    "local p = redis.call('XPENDING', s, G, eid, eid, 1)\n"                    \
    "if #p == 0 then return -1 end\n"                                          \
    "if ARGV[5] == '1' then\n"                                                 \
    "  redis.call('XCLAIM', s, G, ARGV[3], 0, eid, 'JUSTID')\n"                \
    "elseif p[1][4] >= tonumber(ARGV[4]) then\n"                               \
    "  local e = redis.call('XRANGE', s, eid, eid)\n"                          \
    "  if #e > 0 then deadletter(q, e[1]) end\n"                               \
    "else\n"                                                                   \
    "  redis.call('XCLAIM', s, G, p[1][2], 0, eid, 'IDLE', '1000000000000',\n" \
    "             'JUSTID')\n"                                                 \
    /* the next take reclaims it; a waiting taker is woken */                \
    "  redis.call('DEL', 'corio:qr:' .. q)\n"                                  \
    "  wake(q, {'1'})\n"                                                       \
    "end\n"                                                                    \
    "return 0\n"

/* size: ARGV queue -> messages waiting, not leased (the stream's entries
 * less those leased and those done but not trimmed yet). */
#define CORIO__LUA_SIZE                                                        \
    "local s = 'corio:q:' .. ARGV[1]\n"                                        \
    "if redis.call('EXISTS', s) == 0 then return 0 end\n"                      \
    "return redis.call('XLEN', s) - redis.call('XPENDING', s, 'corio')[1] -\n" \
    "       tonumber(redis.call('GET', 'corio:qd:' .. ARGV[1]) or '0')\n"

/* close: ARGV queue; the waiting takers are woken. */
#define CORIO__LUA_CLOSE                                                       \
    "redis.call('SET', 'corio:qz:' .. ARGV[1], '1')\n"                         \
    "redis.call('DEL', 'corio:qzw:' .. ARGV[1])\n"                             \
    "redis.call('RPUSH', 'corio:qzw:' .. ARGV[1], '1')\n"                      \
    "return 0\n"

/* result: ARGV id, remove (1/0), wait key -> {1, value}, {0} (not yet:
 * the caller's wait key is registered for the ack's push), or -1 (no such task, or its result
 * was taken). The common case, a result there, is a plain GET or GETDEL
 * first (redis.c); this is the slow path. */
#define CORIO__LUA_RESULT                                                      \
    CORIO__LUA_DONE                                                            \
    CORIO__LUA_REGISTER                                                        \
    "local id = ARGV[1]\n"                                                     \
    "local rk = 'corio:r:' .. id\n"                                            \
    "local v\n"                                                                \
    "if ARGV[2] == '1' then v = redis.call('GETDEL', rk)\n"                    \
    "else v = redis.call('GET', rk) end\n"                                     \
    "if v then return {1, v} end\n"                                            \
    "local dk, bit = done(id)\n"                                               \
    "if redis.call('GETBIT', dk, bit) == 1 then return -1 end\n"               \
    "if tonumber(id) > tonumber(redis.call('GET', 'corio:ids') or '0') then\n" \
    "  return -1\n"                                                            \
    "end\n"                                                                    \
    "register({id}, ARGV[3])\n"                                                \
    "return {0}\n"

/* results: ARGV wait key, id... -> {k, id, value, ...} with k >= 1:
 * those of the ids with a result, taken (deleted); {0}: none yet, and the
 * caller waits on its wait key (registered in each id's corio:rw:<id>:
 * the ack pushes there); -1: none yet, and an id has no result to come (unknown,
 * or its result taken). */
#define CORIO__LUA_RESULTS                                                     \
    CORIO__LUA_DONE                                                            \
    CORIO__LUA_REGISTER                                                        \
    "local wk = ARGV[1]\n"                                                     \
    "local n = #ARGV - 1\n"                                                    \
    "local keys, vals = {}, {}\n"                                              \
    "for i = 1, n do keys[i] = 'corio:r:' .. ARGV[i + 1] end\n"                \
    "for i = 1, n, 512 do\n"                                                   \
    "  local v = redis.call('MGET', unpack(keys, i, math.min(i + 511, n)))\n"  \
    "  for j = 1, #v do vals[i + j - 1] = v[j] end\n"                          \
    "end\n"                                                                    \
    "local out, got, seen = {0}, {}, {}\n"                                     \
    "for i = 1, n do\n"                                                        \
    "  local id = ARGV[i + 1]\n"                                               \
    "  if vals[i] and not seen[id] then\n"                                     \
    "    seen[id] = true\n"                                                    \
    "    out[#out + 1] = id\n"                                                 \
    "    out[#out + 1] = vals[i]\n"                                            \
    "    got[#got + 1] = keys[i]\n"                                            \
    "  end\n"                                                                  \
    "end\n"                                                                    \
    "if #got > 0 then\n"                                                       \
    "  for i = 1, #got, 512 do\n"                                              \
    "    redis.call('DEL', unpack(got, i, math.min(i + 511, #got)))\n"         \
    "  end\n"                                                                  \
    "  out[1] = #got\n"                                                        \
    "  return out\n"                                                           \
    "end\n"                                                                    \
    /* none there: one with no result to come is -1 (its done bit set, or  \
     * past the ids given out); a BITFIELD per bitmap */                    \
    "local last = tonumber(redis.call('GET', 'corio:ids') or '0')\n"           \
    "local bykey, order = {}, {}\n"                                            \
    "for i = 1, n do\n"                                                        \
    "  local id = ARGV[i + 1]\n"                                               \
    "  if tonumber(id) > last then return -1 end\n"                            \
    "  local dk, bit = done(id)\n"                                             \
    "  local a = bykey[dk]\n"                                                  \
    "  if not a then a = {} bykey[dk] = a order[#order + 1] = dk end\n"        \
    "  a[#a + 1] = 'GET' a[#a + 1] = 'u1' a[#a + 1] = bit\n"                   \
    "end\n"                                                                    \
    "for _, dk in ipairs(order) do\n"                                          \
    "  local a = bykey[dk]\n"                                                  \
    "  for i = 1, #a, 1536 do\n"                                               \
    "    local v = redis.call('BITFIELD', dk, unpack(a, i, math.min(i + 1535, #a)))\n" \
    "    for _, b in ipairs(v) do if b == 1 then return -1 end end\n"          \
    "  end\n"                                                                  \
    "end\n"                                                                    \
    "local ids = {}\n"                                                         \
    "for i = 1, n do ids[i] = ARGV[i + 1] end\n"                               \
    "register(ids, wk)\n"                                                      \
    "return out\n"

#endif
