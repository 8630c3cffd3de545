// How the plugin builds RapidJSON (core's JSON reader and writer include it through this header only).
#pragma once

// RapidJSON scans string runs 16 bytes at a time with SSE2, which every x86-64 has. Its aligned 16-byte loads
// may read past a string's end within the same block (never across a page, so harmless), which the sanitizers
// report: sanitized builds take RapidJSON's byte-by-byte path instead.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define IVD_JSON_NO_SIMD
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define IVD_JSON_NO_SIMD
#endif
#endif
#if defined(__SSE2__) && !defined(RAPIDJSON_SSE2) && !defined(IVD_JSON_NO_SIMD)
#define RAPIDJSON_SSE2
#endif
