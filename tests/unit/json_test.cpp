// The plugin's JSON value type: strict parsing (RFC 8259 plus our limits), exact numbers, writing, wiping.
#include "core/json.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ivd::json {
namespace {

ParseResult parse_text(const std::string &text, const ParseLimits &limits = {}) { return parse(text, limits); }

TEST(Json, ParsesEveryTypeAndKeepsMemberOrder) {
    const auto r = parse_text(R"({"z":null,"b":true,"i":-7,"u":18446744073709551615,"r":1.5,"s":"x\u00e9\n","a":[1,[2]],"o":{}})");
    ASSERT_TRUE(r.ok) << r.error.reason;
    const Value &v = r.value;
    ASSERT_EQ(v.size(), 8u);
    EXPECT_EQ(v.members()[0].key, "z");
    EXPECT_EQ(v.members()[7].key, "o");
    EXPECT_TRUE(v["z"].is_null());
    EXPECT_TRUE(v["b"].as_bool());
    EXPECT_EQ(v["i"].as_int64(), -7);
    EXPECT_TRUE(v["u"].is_integer());
    EXPECT_TRUE(v["u"].integer_is_unsigned());
    EXPECT_EQ(v["u"].as_uint64(), 18446744073709551615ull);
    EXPECT_TRUE(v["r"].is_real());
    EXPECT_DOUBLE_EQ(v["r"].as_double(), 1.5);
    EXPECT_EQ(v["s"].as_string(), "x\xc3\xa9\n");
    EXPECT_EQ(v["a"][1][0].as_int64(), 2);
    EXPECT_TRUE(v["o"].is_object());
    EXPECT_TRUE(v["missing"].is_null());
    EXPECT_EQ(v.find("missing"), nullptr);
}

TEST(Json, NumbersKeepHowTheyWereWritten) {
    const auto r = parse_text(R"([1, 1.0, 1e0, -0, 123456789012345678901234567890, -9223372036854775808])");
    ASSERT_TRUE(r.ok) << r.error.reason;
    const Value &a = r.value;
    EXPECT_TRUE(a[0].is_integer());
    EXPECT_TRUE(a[1].is_real());
    EXPECT_TRUE(a[2].is_real());
    EXPECT_TRUE(a[3].is_integer());
    EXPECT_TRUE(a[4].is_real());
    EXPECT_TRUE(a[4].is_oversized_integer()) << "an integer past 64 bits is not mistaken for a fraction";
    EXPECT_FALSE(a[1].is_oversized_integer());
    EXPECT_EQ(a[5].as_int64(), INT64_MIN);
}

TEST(Json, RefusesWhatStrictJsonRefuses) {
    for (const char *bad : {"", "{", "{} {}", "{}x", R"({"a":1,})", R"({'a':1})", R"({"a":1 /* c */})",
                            "// c\n{}", R"({"a":NaN})", R"({"a":Infinity})", R"({"a":01})", R"({"a":"\x"})",
                            "[1,]", R"({"a":1,"a":2})", "\xef\xbb\xbf{}"}) {
        EXPECT_FALSE(parse_text(bad).ok) << bad;
    }
}

TEST(Json, DuplicateKeysAreFoundInLargeObjectsToo) {
    std::string text = "{";
    for (int i = 0; i < 100; ++i) text += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
    text += "\"k57\":0}";
    const auto r = parse_text(text);
    ASSERT_FALSE(r.ok);
    EXPECT_NE(r.error.reason.find("duplicate key \"k57\""), std::string::npos) << r.error.reason;
    EXPECT_TRUE(parse_text(R"({"a":1,"a":2})", {.reject_duplicate_keys = false}).ok);
}

TEST(Json, EnforcesDepthSizeUtf8AndNul) {
    std::string deep(32, '[');
    deep += std::string(32, ']');
    EXPECT_TRUE(parse_text(deep).ok);
    std::string deeper(33, '[');
    deeper += std::string(33, ']');
    const auto r = parse_text(deeper);
    ASSERT_FALSE(r.ok);
    EXPECT_NE(r.error.reason.find("deeper than 32"), std::string::npos) << r.error.reason;
    // Far past the limit must not recurse: the reader is iterative.
    EXPECT_FALSE(parse_text(std::string(200000, '[')).ok);

    EXPECT_FALSE(parse_text(R"({"a":"12345"})", {.max_bytes = 8}).ok);
    for (const char *bad : {"{\"a\":\"\xff\"}", "{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\xf4\x90\x80\x80\"}",
                            "{\"a\":\"\xe2\x82\"}"}) {
        const auto u = parse_text(bad);
        EXPECT_FALSE(u.ok) << bad;
        EXPECT_TRUE(u.error.invalid_utf8) << bad;
    }
    const std::string with_nul("{\"a\":1}\0{}", 10);
    const auto n = parse_text(with_nul);
    ASSERT_FALSE(n.ok);
    EXPECT_EQ(n.error.offset, 7u);
}

TEST(Json, ErrorsNeverQuoteTheInput) {
    const auto r = parse_text(R"({"password":"hunter2-secret" "x"})");
    ASSERT_FALSE(r.ok);
    EXPECT_EQ(r.error.reason.find("hunter2"), std::string::npos) << r.error.reason;
}

TEST(Json, WritesCompactEscapedText) {
    Value v = Value::object();
    v["s"] = std::string("q\"b\\c\x01\n\xc3\xa9", 9);
    v["n"] = -3;
    v["big"] = 18446744073709551615ull;
    v["r"] = 0.25;
    v["nan"] = 0.0 / 0.0;
    v["a"].append(true);
    v["a"].append(nullptr);
    v["o"] = Value::object();
    EXPECT_EQ(write(v), "{\"s\":\"q\\\"b\\\\c\\u0001\\n\xc3\xa9\",\"n\":-3,\"big\":18446744073709551615,\"r\":0.25,"
                        "\"nan\":null,\"a\":[true,null],\"o\":{}}");
    const auto back = parse(write(v));
    ASSERT_TRUE(back.ok);
    EXPECT_EQ(back.value["s"], v["s"]);
    EXPECT_EQ(back.value["big"], v["big"]);
}

TEST(Json, SettingAKeyTwiceReplacesIt) {
    Value v;
    v["a"] = 1;
    v["a"] = "two";
    v.add("b", 3);
    EXPECT_EQ(v.size(), 2u);
    EXPECT_EQ(v["a"].as_string(), "two");
    EXPECT_TRUE(v.remove("a"));
    EXPECT_FALSE(v.remove("a"));
    EXPECT_EQ(write(v), R"({"b":3})");
}

TEST(Json, WipeStringsOverwritesEveryStringInPlace) {
    auto r = parse_text(R"({"data":{"auth_password":"a-rather-long-password-value","list":["short"]}})");
    ASSERT_TRUE(r.ok);
    const Value &data = r.value.members()[0].value;
    const std::string &pw = data.members()[0].value.as_string();
    const std::string &item = data.members()[1].value.items()[0].as_string();
    const char *bytes = pw.data();
    const std::size_t size = pw.size();
    r.value.wipe_strings();  // keys too: nothing can be looked up by name afterwards
    for (std::size_t i = 0; i < size; ++i) ASSERT_EQ(bytes[i], '\0') << i;
    EXPECT_EQ(item, std::string(5, '\0'));
    EXPECT_EQ(r.value.members()[0].key, std::string(4, '\0'));
}

}  // namespace
}  // namespace ivd::json
