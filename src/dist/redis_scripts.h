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
 *   corio:qr:<queue>   exists (100 ms) after a take looked for expired
 *                      leases: they are looked for at most that often
 *   corio:r:<id>       a task's result (SET by the first ack only; a
 *                      result_take deletes it)
 *   corio:done:<n>     bitmaps: bit id % 2^20 of corio:done:<id / 2^20> is
 *                      set once task id was acked (a later ack is dropped;
 *                      a taken result is ENOENT): 128 KiB per 2^20 tasks
 *   corio:rw:<id>      someone waits for the result: the ack pushes
 *   corio:rn:<id>      a list, for their BLPOP
 *   corio:m:<map>      a map: a hash
 * A queue "<name>.dead" is name's dead-letter queue. */
#ifndef CORIO_DIST_REDIS_SCRIPTS_H
#define CORIO_DIST_REDIS_SCRIPTS_H

/* Where the "acked" bit of task id is: a key per 2^20 ids. */
#define CORIO__LUA_DONE                                                        \
    "local function done(id)\n"                                                \
    "  local n = tonumber(id)\n"                                               \
    "  return 'corio:done:' .. string.format('%d', math.floor(n / 1048576)),\n" \
    "         n % 1048576\n"                                                   \
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
    "local function idof(e) return field(e, 'i') or string.sub(e[1], 3) end\n" \
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
 * came first); the task leaves the queue
 * (even if another taker holds it now). */
#define CORIO__LUA_ACK                                                         \
    CORIO__LUA_COMMON                                                          \
    "local q = ARGV[1]\n"                                                      \
    "local s = skey(q)\n"                                                      \
    "local unknown, gone = 0, {}\n"                                            \
    /* entries added out of order are rare: look them up only if any */      \
    "local mapped = redis.call('EXISTS', 'corio:qx:' .. q) == 1\n"             \
    "for i = 2, #ARGV, 2 do\n"                                                 \
    "  local id = ARGV[i]\n"                                                   \
    "  local eid = mapped and eidof(q, id) or ('0-' .. id)\n"                  \
    /* leased (the usual case): deleted below, all in one XDEL (a deletion  \
     * at the stream's head costs a scan of its node: once per batch) */     \
    "  local here = redis.call('XACK', s, G, eid) == 1\n"                      \
    "  if here then gone[#gone + 1] = eid\n"                                   \
    "  else here = redis.call('XDEL', s, eid) == 1 end\n"                      \
    "  if here and eid ~= '0-' .. id then\n"                                   \
    "    redis.call('HDEL', 'corio:qx:' .. q, id)\n"                           \
    "  end\n"                                                                  \
    "  local dk, bit = done(id)\n"                                             \
    /* the first ack sets the bit and records; a later one is dropped */     \
    "  if here and redis.call('SETBIT', dk, bit, 1) == 0 then\n"               \
    "    redis.call('SET', 'corio:r:' .. id, ARGV[i + 1])\n"                   \
    "    if redis.call('EXISTS', 'corio:rw:' .. id) == 1 then\n"               \
    "      redis.call('RPUSH', 'corio:rn:' .. id, '1')\n"                      \
    "      redis.call('EXPIRE', 'corio:rn:' .. id, 60)\n"                      \
    "    end\n"                                                                \
    "  elseif not here and redis.call('GETBIT', dk, bit) == 0 then\n"          \
    "    unknown = unknown + 1\n"                                              \
    "  end\n"                                                                  \
    "end\n"                                                                    \
    "if #gone > 0 then redis.call('XDEL', s, unpack(gone)) end\n"             \
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

/* size: ARGV queue -> messages waiting, not leased. */
#define CORIO__LUA_SIZE                                                        \
    "local s = 'corio:q:' .. ARGV[1]\n"                                        \
    "if redis.call('EXISTS', s) == 0 then return 0 end\n"                      \
    "return redis.call('XLEN', s) - redis.call('XPENDING', s, 'corio')[1]\n"

/* close: ARGV queue; the waiting takers are woken. */
#define CORIO__LUA_CLOSE                                                       \
    "redis.call('SET', 'corio:qz:' .. ARGV[1], '1')\n"                         \
    "redis.call('DEL', 'corio:qzw:' .. ARGV[1])\n"                             \
    "redis.call('RPUSH', 'corio:qzw:' .. ARGV[1], '1')\n"                      \
    "return 0\n"

/* result: ARGV id, remove (1/0) -> {1, value}, {0} (not yet: the caller
 * is registered for the ack's push), or -1 (no such task, or its result
 * was taken). The common case, a result there, is a plain GET or GETDEL
 * first (redis.c); this is the slow path. */
#define CORIO__LUA_RESULT                                                      \
    CORIO__LUA_DONE                                                            \
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
    "redis.call('SET', 'corio:rw:' .. id, '1', 'EX', 3600)\n"                  \
    "return {0}\n"

#endif
