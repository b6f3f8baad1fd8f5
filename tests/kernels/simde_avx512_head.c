#include "simde_shim.h"
#include "x86/avx512/head.c"
