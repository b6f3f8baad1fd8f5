#include "simde_shim.h"
#include "x86/avxvnni/ternary.c"
