/* A 64-case switch over the input bytes (each in 0..63); every case applies a
 * different operation to the accumulator (the cases were written out by a
 * one-off script; they are plain code, no tables). */
#include "bench.h"

SEC("bench")
u64 BENCH(bench_switch)(u8 *mem, u64 len)
{
	u64 acc = 0x0123456789abcdefull;

	for (u64 i = 0; i < len; i++) {
		switch (mem[i]) {
		case 0:
			acc = acc * 3u + 2135587861u;
			break;
		case 1:
			acc ^= acc >> 2;
			break;
		case 2:
			acc += acc << 4;
			break;
		case 3:
			acc = (acc ^ 1508960552u) - 4;
			break;
		case 4:
			acc = (acc >> 6) | (acc << 58);
			break;
		case 5:
			acc -= 2522864778u ^ (acc >> 9);
			break;
		case 6:
			acc = acc * 15u + 882333243u;
			break;
		case 7:
			acc ^= acc >> 8;
			break;
		case 8:
			acc += acc << 10;
			break;
		case 9:
			acc = (acc ^ 255705934u) - 10;
			break;
		case 10:
			acc = (acc >> 5) | (acc << 59);
			break;
		case 11:
			acc -= 1269610160u ^ (acc >> 4);
			break;
		case 12:
			acc = acc * 27u + 3924045921u;
			break;
		case 13:
			acc ^= acc >> 14;
			break;
		case 14:
			acc += acc << 3;
			break;
		case 15:
			acc = (acc ^ 3297418612u) - 16;
			break;
		case 16:
			acc = (acc >> 4) | (acc << 60);
			break;
		case 17:
			acc -= 16355542u ^ (acc >> 10);
			break;
		case 18:
			acc = acc * 39u + 2670791303u;
			break;
		case 19:
			acc ^= acc >> 20;
			break;
		case 20:
			acc += acc << 9;
			break;
		case 21:
			acc = (acc ^ 2044163994u) - 22;
			break;
		case 22:
			acc = (acc >> 3) | (acc << 61);
			break;
		case 23:
			acc -= 3058068220u ^ (acc >> 5);
			break;
		case 24:
			acc = acc * 51u + 1417536685u;
			break;
		case 25:
			acc ^= acc >> 26;
			break;
		case 26:
			acc += acc << 2;
			break;
		case 27:
			acc = (acc ^ 790909376u) - 28;
			break;
		case 28:
			acc = (acc >> 2) | (acc << 62);
			break;
		case 29:
			acc -= 1804813602u ^ (acc >> 11);
			break;
		case 30:
			acc = acc * 63u + 164282067u;
			break;
		case 31:
			acc ^= acc >> 1;
			break;
		case 32:
			acc += acc << 3;
			break;
		case 33:
			acc = (acc ^ 3832622054u) - 34;
			break;
		case 34:
			acc = (acc >> 5) | (acc << 59);
			break;
		case 35:
			acc -= 551558984u ^ (acc >> 8);
			break;
		case 36:
			acc = acc * 75u + 3205994745u;
			break;
		case 37:
			acc ^= acc >> 7;
			break;
		case 38:
			acc += acc << 9;
			break;
		case 39:
			acc = (acc ^ 2579367436u) - 40;
			break;
		case 40:
			acc = (acc >> 4) | (acc << 60);
			break;
		case 41:
			acc -= 3593271662u ^ (acc >> 3);
			break;
		case 42:
			acc = acc * 87u + 1952740127u;
			break;
		case 43:
			acc ^= acc >> 13;
			break;
		case 44:
			acc += acc << 2;
			break;
		case 45:
			acc = (acc ^ 1326112818u) - 46;
			break;
		case 46:
			acc = (acc >> 3) | (acc << 61);
			break;
		case 47:
			acc -= 2340017044u ^ (acc >> 9);
			break;
		case 48:
			acc = acc * 99u + 699485509u;
			break;
		case 49:
			acc ^= acc >> 19;
			break;
		case 50:
			acc += acc << 8;
			break;
		case 51:
			acc = (acc ^ 72858200u) - 52;
			break;
		case 52:
			acc = (acc >> 2) | (acc << 62);
			break;
		case 53:
			acc -= 1086762426u ^ (acc >> 4);
			break;
		case 54:
			acc = acc * 111u + 3741198187u;
			break;
		case 55:
			acc ^= acc >> 25;
			break;
		case 56:
			acc += acc << 1;
			break;
		case 57:
			acc = (acc ^ 3114570878u) - 58;
			break;
		case 58:
			acc = (acc >> 1) | (acc << 63);
			break;
		case 59:
			acc -= 4128475104u ^ (acc >> 10);
			break;
		case 60:
			acc = acc * 123u + 2487943569u;
			break;
		case 61:
			acc ^= acc >> 31;
			break;
		case 62:
			acc += acc << 2;
			break;
		case 63:
			acc = (acc ^ 1861316260u) - 64;
			break;
		default:
			acc += 1;
		}
	}
	return (acc ^ (acc >> 32)) & 0xffffffffu;
}
