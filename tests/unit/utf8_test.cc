#include "base/utf8.h"

#include <gtest/gtest.h>

namespace onemcp {
TEST(Utf8, KeepsValidText) {
  EXPECT_EQ(sanitize_utf8("héllo\n✓ 😀"), "héllo\n✓ 😀");
  EXPECT_TRUE(is_valid_utf8("héllo"));
}
TEST(Utf8, ReplacesInvalidBytes) {
  EXPECT_EQ(sanitize_utf8("a\xff" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(sanitize_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");          // overlong
  EXPECT_EQ(sanitize_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(sanitize_utf8("x\xE2\x82"), "x\xEF\xBF\xBD\xEF\xBF\xBD");        // truncated
  EXPECT_FALSE(is_valid_utf8("\xF5\x80\x80\x80"));
}
}  // namespace onemcp

#include "base/base64.h"

namespace onemcp {
TEST(Base64, RoundTripsAndRejectsGarbage) {
  for (std::string s : {std::string(""), std::string("f"), std::string("fo"), std::string("foo"),
                        std::string("foob"), std::string("\x00\xff\x01", 3)}) {
    EXPECT_EQ(base64_decode(base64_encode(s)), s);
  }
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_FALSE(base64_decode("Zm8").has_value());
  EXPECT_FALSE(base64_decode("Zm=v").has_value());
  EXPECT_FALSE(base64_decode("Zm8*").has_value());
  EXPECT_FALSE(base64_decode("Zg==Zg==").has_value());
}
}  // namespace onemcp
