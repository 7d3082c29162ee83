// multi.h: an inline helper in another directory, so the line table names
// two files in two directories.
static inline __attribute__((always_inline)) int clamp(int v, int lo, int hi)
{
    if (v < lo)
        return lo;
    if (v > hi)
        return hi;
    return v;
}
