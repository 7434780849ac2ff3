#ifndef MARQUEE_CHIREDIS_SHIM_H
#define MARQUEE_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#endif
