#ifndef MARQUEE_CMAXMINDDB_SHIM_H
#define MARQUEE_CMAXMINDDB_SHIM_H
#include <maxminddb.h>
#endif
