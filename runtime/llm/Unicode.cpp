// Unicode lookups over the generated tables (UnicodeTables.inc) and UTF-8 coding.
#include "Unicode.h"

#include <algorithm>
#include <vector>
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

struct CombiningClass {
  uint32_t codePoint;
  uint8_t value;
};

struct Composition {
  uint32_t first, second, composed;
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

namespace {

uint8_t combiningClass(uint32_t cp) {
  auto found = std::lower_bound(std::begin(kCombiningClasses), std::end(kCombiningClasses), cp,
                                [](const CombiningClass &entry, uint32_t c) { return entry.codePoint < c; });
  return found != std::end(kCombiningClasses) && found->codePoint == cp ? found->value : 0;
}

void appendCanonicalDecomposition(std::vector<uint32_t> &out, uint32_t cp) {
  if (cp >= kHangulFirst && cp < kHangulFirst + kHangulCount) {
    uint32_t index = cp - kHangulFirst;
    out.push_back(kLeadingJamo + index / (kVowelCount * kTrailingCount));
    out.push_back(kVowelJamo + index % (kVowelCount * kTrailingCount) / kTrailingCount);
    if (index % kTrailingCount)
      out.push_back(kTrailingJamo + index % kTrailingCount);
    return;
  }
  auto found = std::lower_bound(std::begin(kCanonicalDecompositions), std::end(kCanonicalDecompositions), cp,
                                [](const BertNormalization &entry, uint32_t c) { return entry.codePoint < c; });
  if (found == std::end(kCanonicalDecompositions) || found->codePoint != cp) {
    out.push_back(cp);
    return;
  }
  std::string_view decomposed(found->utf8);
  for (size_t at = 0; at < decomposed.size();)
    out.push_back(decodeUtf8(decomposed, at));
}

// The primary composite of first + second, or 0.
uint32_t compose(uint32_t first, uint32_t second) {
  if (first >= kLeadingJamo && first < kLeadingJamo + 19 && second >= kVowelJamo &&
      second < kVowelJamo + kVowelCount)
    return kHangulFirst + ((first - kLeadingJamo) * kVowelCount + (second - kVowelJamo)) * kTrailingCount;
  if (first >= kHangulFirst && first < kHangulFirst + kHangulCount &&
      (first - kHangulFirst) % kTrailingCount == 0 && second > kTrailingJamo &&
      second < kTrailingJamo + kTrailingCount)
    return first + (second - kTrailingJamo);
  auto found = std::lower_bound(std::begin(kCompositions), std::end(kCompositions), std::pair(first, second),
                                [](const Composition &entry, std::pair<uint32_t, uint32_t> key) {
                                  return std::pair(entry.first, entry.second) < key;
                                });
  return found != std::end(kCompositions) && found->first == first && found->second == second
             ? found->composed
             : 0;
}

// NFC of a run of code points (all valid).
void appendNfc(std::string &out, const std::vector<uint32_t> &codePoints) {
  std::vector<uint32_t> text;
  for (uint32_t cp : codePoints)
    appendCanonicalDecomposition(text, cp);
  // Canonical ordering: marks between starters sorted by class, stably.
  for (size_t begin = 0; begin < text.size();) {
    if (combiningClass(text[begin]) == 0) {
      ++begin;
      continue;
    }
    size_t end = begin;
    while (end < text.size() && combiningClass(text[end]) != 0)
      ++end;
    // Insertion sort: stable, and runs of marks are short.
    for (size_t i = begin + 1; i < end; ++i)
      for (size_t j = i; j > begin && combiningClass(text[j - 1]) > combiningClass(text[j]); --j)
        std::swap(text[j - 1], text[j]);
    begin = end;
  }
  // Canonical composition (UAX #15's sample algorithm): a character joins the last
  // starter unless a character between them has a class of zero or at least its own.
  if (text.empty())
    return;
  size_t starter = 0, written = 1;
  int lastClass = combiningClass(text[0]) ? 256 : 0;
  for (size_t i = 1; i < text.size(); ++i) {
    int cls = combiningClass(text[i]);
    uint32_t composite = compose(text[starter], text[i]);
    if (composite && (lastClass < cls || lastClass == 0)) {
      text[starter] = composite;
      continue;
    }
    if (cls == 0)
      starter = written;
    lastClass = cls;
    text[written++] = text[i];
  }
  for (size_t i = 0; i < written; ++i)
    appendUtf8(out, text[i]);
}

} // namespace

std::string normalizeNfc(std::string_view text) {
  std::string out;
  std::vector<uint32_t> run;
  for (size_t at = 0; at < text.size();) {
    size_t begin = at;
    uint32_t cp = decodeUtf8(text, at);
    if (cp == kReplacementCharacter && text.substr(begin, at - begin) != "\xef\xbf\xbd") {
      appendNfc(out, run);
      run.clear();
      out.append(text, begin, at - begin);
      continue;
    }
    run.push_back(cp);
  }
  appendNfc(out, run);
  return out;
}

} // namespace kiln::llm
