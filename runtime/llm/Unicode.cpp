// Unicode lookups over the generated tables (UnicodeTables.inc) and UTF-8 coding.
#include "Unicode.h"

#include <algorithm>
#include <iterator>

namespace kiln::llm {

namespace {

struct UnicodeClassRun {
  uint32_t first;
  CharClass charClass;
};

struct BertNormalization {
  uint32_t codePoint;
  const char *utf8;
};

#include "UnicodeTables.inc"

// Hangul syllables decompose by formula (Unicode 3.12), into jamo, which are letters.
constexpr uint32_t kHangulFirst = 0xAC00, kHangulCount = 11172;
constexpr uint32_t kLeadingJamo = 0x1100, kVowelJamo = 0x1161, kTrailingJamo = 0x11A7;
constexpr uint32_t kVowelCount = 21, kTrailingCount = 28;

} // namespace

CharClass charClass(uint32_t codePoint) {
  auto after = std::upper_bound(std::begin(kUnicodeClassRuns), std::end(kUnicodeClassRuns),
                                codePoint, [](uint32_t cp, const UnicodeClassRun &run) {
                                  return cp < run.first;
                                });
  if (after == std::begin(kUnicodeClassRuns))
    return CharClass::Other;
  return std::prev(after)->charClass;
}

uint32_t decodeUtf8(std::string_view text, size_t &pos) {
  auto byte = [&](size_t i) { return uint8_t(text[i]); };
  uint8_t lead = byte(pos);
  if (lead < 0x80) {
    ++pos;
    return lead;
  }
  size_t length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 0;
  uint32_t minimum = length == 4 ? 0x10000 : length == 3 ? 0x800 : 0x80;
  if (length == 0 || lead > 0xF4 || length > text.size() - pos) {
    ++pos;
    return kReplacementCharacter;
  }
  uint32_t codePoint = lead & (0x7F >> length);
  for (size_t i = 1; i < length; ++i) {
    if ((byte(pos + i) & 0xC0) != 0x80) {
      ++pos;
      return kReplacementCharacter;
    }
    codePoint = (codePoint << 6) | (byte(pos + i) & 0x3F);
  }
  if (codePoint < minimum || codePoint > 0x10FFFF || (codePoint >= 0xD800 && codePoint < 0xE000)) {
    ++pos;
    return kReplacementCharacter;
  }
  pos += length;
  return codePoint;
}

void appendUtf8(std::string &out, uint32_t codePoint) {
  if (codePoint < 0x80) {
    out += char(codePoint);
  } else if (codePoint < 0x800) {
    out += char(0xC0 | (codePoint >> 6));
    out += char(0x80 | (codePoint & 0x3F));
  } else if (codePoint < 0x10000) {
    out += char(0xE0 | (codePoint >> 12));
    out += char(0x80 | ((codePoint >> 6) & 0x3F));
    out += char(0x80 | (codePoint & 0x3F));
  } else {
    out += char(0xF0 | (codePoint >> 18));
    out += char(0x80 | ((codePoint >> 12) & 0x3F));
    out += char(0x80 | ((codePoint >> 6) & 0x3F));
    out += char(0x80 | (codePoint & 0x3F));
  }
}

bool isCjkIdeograph(uint32_t cp) {
  // The blocks BERT's _is_chinese_char lists.
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

void appendBertNormalized(std::string &out, uint32_t codePoint) {
  if (codePoint >= kHangulFirst && codePoint < kHangulFirst + kHangulCount) {
    uint32_t index = codePoint - kHangulFirst;
    appendUtf8(out, kLeadingJamo + index / (kVowelCount * kTrailingCount));
    appendUtf8(out, kVowelJamo + index % (kVowelCount * kTrailingCount) / kTrailingCount);
    if (index % kTrailingCount)
      appendUtf8(out, kTrailingJamo + index % kTrailingCount);
    return;
  }
  auto found = std::lower_bound(std::begin(kBertNormalizations), std::end(kBertNormalizations),
                                codePoint, [](const BertNormalization &entry, uint32_t cp) {
                                  return entry.codePoint < cp;
                                });
  if (found != std::end(kBertNormalizations) && found->codePoint == codePoint)
    out += found->utf8;
  else
    appendUtf8(out, codePoint);
}

} // namespace kiln::llm
