/* include/corio.h -- corio: a C runtime for concurrent programs.
 * Include this one header; it includes one header per layer. */
#ifndef CORIO_H
#define CORIO_H

#include "corio/error.h"
#include "corio/coro.h"
#include "corio/loop.h"
#include "corio/task.h"
#include "corio/agen.h"
#include "corio/group.h"
#include "corio/sync.h"
#include "corio/thread.h"
#include "corio/io.h"
#include "corio/tls.h"
#include "corio/http.h"
#include "corio/http_client.h"
#include "corio/ws.h"
#include "corio/dist.h"
#include "corio/ipc.h"
#include "corio/proc.h"

#endif
