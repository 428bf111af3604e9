/* SPDX-License-Identifier: MIT */
/* dlopen()ed by test_preload: its TLS block is allocated with malloc on
 * first touch in each thread (dynamic TLS), a first use inside TLS setup. */
__thread char tls_lib_buf[100000];

char *tls_lib_touch(int c)
{
	tls_lib_buf[0] = (char)c;
	tls_lib_buf[sizeof tls_lib_buf - 1] = (char)c;
	return tls_lib_buf;
}
