/* The least work any reader of a JSON Lines recording must do: read the file in 1 MiB
 * blocks (as lockstep's reader does) and find every quote, backslash and line end, with
 * SSE2 compares and popcounts and nothing else: no decoding, no events, no checking.
 * check_throughput.sh builds it with -march=native (popcount as one instruction) and
 * times it next to wc, grep and lockstep.
 *
 * Usage: jsonl_floor FILE    prints the three counts; exit 2 if FILE cannot be read. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static char buf[(1 << 20) + 64] __attribute__((aligned(64)));

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s FILE\n", argv[0]);
    return 2;
  }
  int fd = open(argv[1], O_RDONLY);
  if (fd < 0) {
    fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
    return 2;
  }
  uint64_t quotes = 0, backslashes = 0, lines = 0;
  ssize_t n;
  while ((n = read(fd, buf, 1 << 20)) > 0) {
    ssize_t i = 0;
#if defined(__SSE2__)
    const __m128i q = _mm_set1_epi8('"'), b = _mm_set1_epi8('\\'), l = _mm_set1_epi8('\n');
    for (; i + 16 <= n; i += 16) {
      const __m128i v = _mm_load_si128((const __m128i*)(buf + i));
      quotes += (uint64_t)__builtin_popcount((unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, q)));
      backslashes += (uint64_t)__builtin_popcount((unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, b)));
      lines += (uint64_t)__builtin_popcount((unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, l)));
    }
#endif
    for (; i < n; ++i) {
      quotes += buf[i] == '"';
      backslashes += buf[i] == '\\';
      lines += buf[i] == '\n';
    }
  }
  if (n < 0) {
    fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
    return 2;
  }
  close(fd);
  printf("%llu quotes, %llu backslashes, %llu lines\n", (unsigned long long)quotes,
         (unsigned long long)backslashes, (unsigned long long)lines);
  return 0;
}
