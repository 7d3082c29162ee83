/* A dense 64-case switch returning a 64-bit constant per case (the constants
 * are splitmix64 outputs, written out by a one-off script), over 4,096 input
 * bytes whose keys are random in [0, 64). At -mcpu=v2/v3 clang compiles the
 * switch to a compare tree (BPF has no indirect jump before v4's gotox). */
#include "bench.h"

static inline __attribute__((always_inline)) u64 pick(u8 k)
{
	switch (k) {
	case 0:
		return 0x22118258a9d111a0ull;
	case 1:
		return 0x346edce5f713f8edull;
	case 2:
		return 0x1e9a57bc80e6721dull;
	case 3:
		return 0x2d160e7e5c3f42caull;
	case 4:
		return 0x81c2e6dc980d78ebull;
	case 5:
		return 0x5647e55ad933f62eull;
	case 6:
		return 0x1f6622b40cb38e42ull;
	case 7:
		return 0x6e7411b06820371cull;
	case 8:
		return 0x7ad34039583ab917ull;
	case 9:
		return 0xde15eab5ce53fecfull;
	case 10:
		return 0x2f43a94042571d85ull;
	case 11:
		return 0x61571b285c0b9816ull;
	case 12:
		return 0xc3e04a9344b5f864ull;
	case 13:
		return 0xe0b2f2ed05269a55ull;
	case 14:
		return 0xf871cac18ae3fd10ull;
	case 15:
		return 0x64415599d1caf6b6ull;
	case 16:
		return 0xc8c99c0e445a0f1cull;
	case 17:
		return 0x8258515c9060b81eull;
	case 18:
		return 0xcfadec2a33ddb880ull;
	case 19:
		return 0x6049a845381e5debull;
	case 20:
		return 0x24d32d1399489901ull;
	case 21:
		return 0x4b29d65cb143494cull;
	case 22:
		return 0x2cf21c25c5731607ull;
	case 23:
		return 0x3e147a3bf7974d7full;
	case 24:
		return 0x2d41a8b08ad9f8dbull;
	case 25:
		return 0x56acaceec0049eb3ull;
	case 26:
		return 0x01cb443cfef6aab3ull;
	case 27:
		return 0x1c402042b2a54fabull;
	case 28:
		return 0x34b63adf42680686ull;
	case 29:
		return 0x2d1d493910c8ca72ull;
	case 30:
		return 0xd03f722dfba58d98ull;
	case 31:
		return 0xdf6f910a08f884f2ull;
	case 32:
		return 0xd14b5abdd461beccull;
	case 33:
		return 0x32c96246fef865fbull;
	case 34:
		return 0xb7e00591f67e2712ull;
	case 35:
		return 0x28da85de1c3689c3ull;
	case 36:
		return 0x4299ff6b2a265425ull;
	case 37:
		return 0x575ab7cb990947d9ull;
	case 38:
		return 0x69745f7fdde0976dull;
	case 39:
		return 0xc1e57d333547d2d0ull;
	case 40:
		return 0xd48210ddb8270f9cull;
	case 41:
		return 0x87bd64435417833dull;
	case 42:
		return 0xde7932930b4323e6ull;
	case 43:
		return 0x714e9fb7a8c0b15cull;
	case 44:
		return 0x1b9eddd8a28f5524ull;
	case 45:
		return 0x700e597242eb887aull;
	case 46:
		return 0x713273c3dbbd1e02ull;
	case 47:
		return 0xcecec0aa949bef57ull;
	case 48:
		return 0x6f6692b54b84d0a6ull;
	case 49:
		return 0x7951043aab2b1fd2ull;
	case 50:
		return 0x36410cd1d2c8d32aull;
	case 51:
		return 0x808bf999f84ae09dull;
	case 52:
		return 0x06acb90f3906bca8ull;
	case 53:
		return 0x2982ccc13327e297ull;
	case 54:
		return 0x089b2e5a1666c210ull;
	case 55:
		return 0x8410becfb2c17ccfull;
	case 56:
		return 0x3d1f587a5726a0b7ull;
	case 57:
		return 0x023b77eeb84caf24ull;
	case 58:
		return 0xf7385b6d270ee1dbull;
	case 59:
		return 0x0315e4bcfb942919ull;
	case 60:
		return 0x1cf15bd42222141cull;
	case 61:
		return 0x47eb4e11682bce74ull;
	case 62:
		return 0x362c29275a062d88ull;
	case 63:
		return 0x58fd964634268b06ull;
	default:
		return 0;
	}
}

SEC("bench")
u64 BENCH(bench_switch64)(u8 *mem, u64 len)
{
	u64 acc = 0;

	for (u64 i = 0; i < len; i++)
		acc = (acc << 1 | acc >> 63) ^ pick(mem[i]);
	return acc;
}
