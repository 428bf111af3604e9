// SPDX-License-Identifier: MIT
//
// A C++ program as a user would write it, run by lib/test/programs.sh
// under glibc's malloc and under LD_PRELOAD=liballoc.so: the outputs must
// be identical.  Over-aligned types (alignas 32, 64, 128, 4096) make
// libstdc++'s new call aligned_alloc; plain new calls malloc and must
// give __STDCPP_DEFAULT_NEW_ALIGNMENT__ (16) for 16 bytes and more.
// Worker threads allocate, hand blocks to each other and free them; every
// pointer is checked against the alignment its type asks for.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

struct Digest {
	uint64_t h = 0xcbf29ce484222325ULL;
	void bytes(const void *p, size_t n)
	{
		const unsigned char *c = static_cast<const unsigned char *>(p);
		for (size_t i = 0; i < n; i++) {
			h ^= c[i];
			h *= 0x100000001b3ULL;
		}
	}
	void u64(uint64_t v) { bytes(&v, sizeof v); }
};

struct Rng {
	uint64_t s;
	uint64_t next()
	{
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		return s;
	}
};

std::atomic<int> failures{0};

void check_align(const char *what, const void *p, size_t align)
{
	if (reinterpret_cast<uintptr_t>(p) % align != 0) {
		std::fprintf(stderr, "%s: %p is not %zu-aligned\n", what, p, align);
		failures++;
	}
}

template <size_t A> struct alignas(A) Over {
	uint64_t v[3];
	explicit Over(uint64_t x = 5) : v{x, x * 3, x ^ A} {}
	~Over() { v[0] = 0; }	// non-trivial: new[] keeps a cookie
	uint64_t sum() const { return v[0] + v[1] + v[2]; }
};

template <size_t A> uint64_t over_aligned(Rng &rng)
{
	Digest d;
	std::vector<std::unique_ptr<Over<A>>> singles;
	for (int i = 0; i < 200; i++) {
		singles.emplace_back(new Over<A>(rng.next() % 1000));
		check_align("new Over", singles.back().get(), A);
	}
	for (int n = 1; n < 40; n++) {
		Over<A> *arr = new Over<A>[n];
		check_align("new Over[]", arr, A);
		for (int i = 0; i < n; i++)
			d.u64(arr[i].sum());
		delete[] arr;
	}
	std::vector<Over<A>> vec;
	for (int i = 0; i < 300; i++) {
		vec.emplace_back(static_cast<uint64_t>(i));
		check_align("vector<Over>", vec.data(), A);
	}
	auto shared = std::make_shared<Over<A>>(7);
	check_align("make_shared<Over>", shared.get(), A);
	for (auto &p : singles)
		d.u64(p->sum());
	for (auto &o : vec)
		d.u64(o.sum());
	d.u64(shared->sum());
	return d.h;
}

// operator new(size, align_val_t) and the matching deletes, every power
// of two from 16 to 64 KiB, sizes below, at and above the alignment.
uint64_t explicit_aligned(Rng &rng)
{
	Digest d;
	std::vector<std::pair<void *, size_t>> live;
	for (size_t a = 16; a <= 65536; a <<= 1) {
		for (size_t size : { size_t(1), size_t(17), a / 2 + 1, a, a + 1, 3 * a, size_t(5000) }) {
			void *p = ::operator new(size, std::align_val_t(a));
			check_align("operator new(align_val_t)", p, a);
			std::memset(p, static_cast<int>(size & 0xff), size);
			if (rng.next() % 2) {
				d.bytes(p, size < 64 ? size : 64);
				::operator delete(p, size, std::align_val_t(a));
			} else {
				live.emplace_back(p, a);
			}
		}
	}
	for (auto &[p, a] : live)
		::operator delete(p, std::align_val_t(a));
	// Plain new: the default new alignment for 16 bytes and up.
	for (size_t size = 1; size < 2048; size++) {
		void *ps[8];
		for (auto &p : ps) {
			p = ::operator new(size);
			check_align("operator new", p, size >= __STDCPP_DEFAULT_NEW_ALIGNMENT__ ?
				    __STDCPP_DEFAULT_NEW_ALIGNMENT__ : 8);
		}
		for (auto p : ps)
			::operator delete(p);
	}
	return d.h;
}

uint64_t containers(Rng &rng)
{
	Digest d;
	std::map<std::string, std::vector<int>> m;
	std::unordered_map<uint64_t, std::string> u;
	for (int i = 0; i < 20000; i++) {
		uint64_t k = rng.next() % 3000;
		m["key" + std::to_string(k)].push_back(i);
		u[k] += static_cast<char>('a' + k % 26);
	}
	for (auto &[k, v] : m) {
		d.bytes(k.data(), k.size());
		for (int x : v)
			d.u64(static_cast<uint64_t>(x));
	}
	std::map<uint64_t, std::string> sorted(u.begin(), u.end());
	for (auto &[k, v] : sorted) {
		d.u64(k);
		d.bytes(v.data(), v.size());
	}
	return d.h;
}

// Blocks made by one thread and freed by another.
std::mutex handoff_lock;
std::vector<std::unique_ptr<Over<64>>> handoff;

uint64_t worker(uint64_t seed)
{
	Rng rng{seed};
	Digest d;
	for (int round = 0; round < 3; round++) {
		d.u64(over_aligned<32>(rng));
		d.u64(over_aligned<64>(rng));
		d.u64(over_aligned<128>(rng));
		d.u64(explicit_aligned(rng));
		d.u64(containers(rng));
		std::vector<std::unique_ptr<Over<64>>> mine;
		for (int i = 0; i < 500; i++)
			mine.emplace_back(new Over<64>(seed + static_cast<uint64_t>(i)));
		std::lock_guard<std::mutex> g(handoff_lock);
		uint64_t s = 0;
		for (auto &p : handoff)
			s += p->sum();
		(void)s;	// order between threads varies: not in the digest
		handoff = std::move(mine);	// frees the previous thread's blocks
	}
	// Page-aligned objects, as a buffer pool would hold them.
	Rng prng{seed};
	d.u64(over_aligned<4096>(prng));
	return d.h;
}

} // namespace

int main()
{
	Rng rng{1};
	std::printf("over-aligned 32: %016llx\n", (unsigned long long)over_aligned<32>(rng));
	std::printf("over-aligned 4096: %016llx\n", (unsigned long long)over_aligned<4096>(rng));
	std::printf("operator new(align_val_t): %016llx\n", (unsigned long long)explicit_aligned(rng));
	std::printf("containers: %016llx\n", (unsigned long long)containers(rng));

	const int n = 8;
	std::vector<uint64_t> results(n);
	std::vector<std::thread> threads;
	for (int t = 0; t < n; t++)
		threads.emplace_back([&results, t] { results[t] = worker(100 + t); });
	for (auto &t : threads)
		t.join();
	handoff.clear();
	for (int t = 0; t < n; t++)
		std::printf("thread %d: %016llx\n", t, (unsigned long long)results[t]);
	if (failures) {
		std::fprintf(stderr, "%d misaligned blocks\n", failures.load());
		return 1;
	}
	return 0;
}
