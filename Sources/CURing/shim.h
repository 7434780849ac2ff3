// Only what Swift cannot import from liburing 2.3: flag enums built from enum members,
// and constants of kernel features newer than the 2.3 headers.
#pragma once
#include <sys/socket.h>   // must precede liburing.h (fd_set definition clash otherwise)
#include <liburing.h>

static const unsigned char MQ_IOSQE_FIXED_FILE = IOSQE_FIXED_FILE;
static const unsigned char MQ_IOSQE_IO_LINK = IOSQE_IO_LINK;
static const unsigned char MQ_IOSQE_BUFFER_SELECT = IOSQE_BUFFER_SELECT;
static const unsigned char MQ_IOSQE_CQE_SKIP_SUCCESS = IOSQE_CQE_SKIP_SUCCESS;

// Kernel 6.4: a timeout that fires repeatedly without being re-armed.
#ifndef IORING_TIMEOUT_MULTISHOT
#define IORING_TIMEOUT_MULTISHOT (1U << 6)
#endif
static const unsigned MQ_IORING_TIMEOUT_MULTISHOT = IORING_TIMEOUT_MULTISHOT;
