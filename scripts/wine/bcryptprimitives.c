/*
 * bcryptprimitives.dll for Wine 8.0, which has none: every Go 1.26
 * Windows binary loads it at start for ProcessPrng and dies with
 * "bcryptprimitives.dll not found" without it. This shim exports only
 * ProcessPrng, filled by BCryptGenRandom with the system-preferred RNG
 * (Wine's bcrypt reads the host's random source), in chunks because
 * BCryptGenRandom takes a ULONG length and ProcessPrng a SIZE_T.
 *
 * Used by the test harness only (scripts/wine/test.sh copies it into a
 * throw-away prefix's system32); real Windows ships its own.
 */
#include <windows.h>
#include <bcrypt.h>

#ifndef BCRYPT_USE_SYSTEM_PREFERRED_RNG
#define BCRYPT_USE_SYSTEM_PREFERRED_RNG 0x00000002
#endif

/* ProcessPrng fills buf with n random bytes. It returns TRUE, as the
 * real one always does; on a failure of BCryptGenRandom it returns FALSE,
 * which makes the Go runtime throw rather than run without randomness. */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE buf, SIZE_T n)
{
	while (n > 0) {
		ULONG chunk = n > 0x40000000 ? 0x40000000 : (ULONG)n;
		if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, buf, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
			return FALSE;
		buf += chunk;
		n -= chunk;
	}
	return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, LPVOID reserved)
{
	(void)inst; (void)reason; (void)reserved;
	return TRUE;
}
