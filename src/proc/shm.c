/* src/proc/shm.c -- shared memory blocks by name
 * (multiprocessing.shared_memory.SharedMemory): POSIX shm_open, sized with
 * ftruncate, mapped whole. The name lives in /dev/shm until one process
 * unlinks it; the memory until the last mapping goes.
 *
 * What this file does not do: resize a block, or track who still maps it
 * (Python's resource tracker): the creator unlinks it when done. */
#define _GNU_SOURCE
#include "ipc_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHM_NAME_MAX 200

struct corio_shm {
    void *data;
    size_t size;
    char path[SHM_NAME_MAX + 2];    /* "/" and the name */
};

/* Letters, digits, '-', '_', '.', 1 to SHM_NAME_MAX characters, not "."
 * or "..": a name that is one file in /dev/shm. */
static bool name_ok(const char *name)
{
    size_t n = 0;

    for (; name[n] != '\0'; n++) {
        char c = name[n];

        if (n >= SHM_NAME_MAX)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            return false;
    }
    return n > 0 && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* Map fd's size bytes into a new handle named path; closes fd. */
static corio_shm *shm_map(int fd, const char *path, size_t size)
{
    corio_shm *shm = calloc(1, sizeof(*shm));
    int err;

    if (shm == NULL)
        goto fail;
    shm->data = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (shm->data == MAP_FAILED)
        goto fail;
    shm->size = size;
    snprintf(shm->path, sizeof(shm->path), "%s", path);
    close(fd);
    return shm;

fail:
    err = errno;
    free(shm);
    close(fd);
    errno = err;
    return NULL;
}

corio_shm *corio_shm_create(const char *name, size_t size)
{
    static _Atomic unsigned seq;
    char path[SHM_NAME_MAX + 2];
    corio_shm *shm;
    int fd, err;

    if (size == 0 || (size_t)(off_t)size != size || (off_t)size < 0 ||
        (name != NULL && !name_ok(name))) {
        errno = EINVAL;
        return NULL;
    }
    if (name != NULL)
        snprintf(path, sizeof(path), "/%s", name);
    else
        snprintf(path, sizeof(path), "/corio-%d-%u", (int)getpid(),
                 atomic_fetch_add(&seq, 1));
    fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd == -1)
        return NULL;
    if (ftruncate(fd, (off_t)size) == -1)
        goto fail;
    shm = shm_map(fd, path, size);
    if (shm == NULL) {
        fd = -1;
        goto fail;
    }
    return shm;

fail:
    err = errno;
    if (fd >= 0)
        close(fd);
    shm_unlink(path);
    errno = err;
    return NULL;
}

corio_shm *corio_shm_attach(const char *name)
{
    char path[SHM_NAME_MAX + 2];
    struct stat st = {.st_size = 1};
    int fd;

    if (name == NULL || !name_ok(name)) {
        errno = EINVAL;
        return NULL;
    }
    snprintf(path, sizeof(path), "/%s", name);
    fd = shm_open(path, O_RDWR | O_CLOEXEC, 0);
    if (fd == -1)
        return NULL;
    if (fstat(fd, &st) == -1 || st.st_size <= 0) {
        int err = st.st_size > 0 ? errno : EINVAL;

        close(fd);
        errno = err;
        return NULL;
    }
    return shm_map(fd, path, (size_t)st.st_size);
}

void *corio_shm_data(const corio_shm *shm)
{
    return shm != NULL ? shm->data : NULL;
}

size_t corio_shm_size(const corio_shm *shm)
{
    return shm != NULL ? shm->size : 0;
}

const char *corio_shm_name(const corio_shm *shm)
{
    return shm != NULL ? shm->path + 1 : NULL;
}

int corio_shm_unlink(corio_shm *shm)
{
    if (shm == NULL) {
        errno = EINVAL;
        return -1;
    }
    return shm_unlink(shm->path);
}

int corio_shm_close(corio_shm *shm)
{
    if (shm == NULL)
        return 0;
    munmap(shm->data, shm->size);
    free(shm);
    return 0;
}
