/* A stand-in for Windows' bcryptprimitives.dll, for running keyroll's Windows build under
 * Wine 8, which has no such DLL: Rust's std (1.78 and later) imports ProcessPrng from it for
 * every random number (HashMap keys, temp file names). Fills the buffer from advapi32's
 * RtlGenRandom (SystemFunction036), which Wine has. scripts/release-check builds it with
 * mingw and puts it next to keyroll.exe; never shipped. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T size) {
    while (size > 0) {
        ULONG chunk = size > 0x40000000 ? 0x40000000 : (ULONG)size;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        size -= chunk;
    }
    return TRUE;
}
