// Hugging Face tokenizer.json (the `tokenizers` library's format): its normalizer,
// pre-tokenizer, model (BPE or WordPiece), added tokens, post-processor, truncation and
// decoder are read into plain data here and run in that order. Only what kiln's models
// use is accepted; anything else is an error naming the JSON path and the value.
#include "PieceMerging.h"
#include "PreTokenizerRegex.h"
#include "TokenizerModels.h"
#include "Unicode.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

namespace kiln::llm {

namespace {

using Json = nlohmann::json;

// A format error while reading. The JSON nests deeply, so the readers below throw it
// instead of threading a Result through every accessor; fromHuggingFaceJson turns it
// into an Error, and no exception leaves this file.
struct FormatError {
  std::string message;
};

[[noreturn]] void fail(const std::string &path, const std::string &what) {
  throw FormatError{path + " " + what};
}

std::string describe(const Json &value) {
  // Containers by their type only: dumping one would recurse as deep as it nests.
  if (value.is_structured())
    return value.type_name();
  std::string text = value.dump();
  return text.size() > 60 ? text.substr(0, 57) + "..." : text;
}

// object[key] at `path` + "." + key; null or absent is nullptr.
const Json *optionalMember(const Json &object, const std::string &path, const char *key) {
  if (!object.is_object())
    fail(path, "must be an object (found " + std::string(object.type_name()) + ")");
  auto found = object.find(key);
  return found == object.end() || found->is_null() ? nullptr : &*found;
}

const Json &member(const Json &object, const std::string &path, const char *key) {
  const Json *value = optionalMember(object, path, key);
  if (!value)
    fail(path.empty() ? key : path + "." + key, "is missing");
  return *value;
}

std::string join(const std::string &path, const char *key) {
  return path.empty() ? key : path + "." + key;
}

std::string stringAt(const Json &object, const std::string &path, const char *key) {
  const Json &value = member(object, path, key);
  if (!value.is_string())
    fail(join(path, key), "must be a string (found " + describe(value) + ")");
  return value.get<std::string>();
}

std::string optionalString(const Json &object, const std::string &path, const char *key,
                           const std::string &fallback) {
  return optionalMember(object, path, key) ? stringAt(object, path, key) : fallback;
}

bool optionalBool(const Json &object, const std::string &path, const char *key, bool fallback) {
  const Json *value = optionalMember(object, path, key);
  if (!value)
    return fallback;
  if (!value->is_boolean())
    fail(join(path, key), "must be true or false (found " + describe(*value) + ")");
  return value->get<bool>();
}

int64_t integerAt(const Json &value, const std::string &path, int64_t lowest, int64_t highest) {
  if (!value.is_number_integer() || value.get<int64_t>() < lowest || value.get<int64_t>() > highest)
    fail(path, "must be an integer in " + std::to_string(lowest) + ".." + std::to_string(highest) +
                   " (found " + describe(value) + ")");
  return value.get<int64_t>();
}

const Json &arrayAt(const Json &object, const std::string &path, const char *key) {
  const Json &value = member(object, path, key);
  if (!value.is_array())
    fail(join(path, key), "must be an array (found " + std::string(value.type_name()) + ")");
  return value;
}

// A "type" tagged component (normalizer, pre_tokenizer, decoder, ...): its type, or
// an error listing what kiln supports.
std::string componentType(const Json &component, const std::string &path,
                          std::initializer_list<const char *> supported) {
  // Sequences nest by recursion here; a file cannot make it deep.
  if (std::count(path.begin(), path.end(), '[') > 16)
    fail(path, "nests Sequences more than 16 deep");
  std::string type = stringAt(component, path, "type");
  for (const char *name : supported)
    if (type == name)
      return type;
  std::string list;
  for (const char *name : supported)
    list += (list.empty() ? "" : ", ") + std::string(name);
  fail(path + ".type", "'" + type + "' is not supported; kiln supports " + list);
}

// One code point given as a one-character string ("▁", " ").
std::string characterAt(const Json &object, const std::string &path, const char *key) {
  std::string text = stringAt(object, path, key);
  size_t at = 0;
  if (text.empty() || (decodeUtf8(text, at), at != text.size()))
    fail(join(path, key), "must be one character (found '" + text + "')");
  return text;
}

// Replace's pattern: only {"String": ...}.
std::string stringPattern(const Json &component, const std::string &path) {
  const Json &pattern = member(component, path, "pattern");
  if (optionalMember(pattern, path + ".pattern", "Regex"))
    fail(path + ".pattern", "is a regular expression; kiln supports only {\"String\": ...} here");
  std::string text = stringAt(pattern, path + ".pattern", "String");
  if (text.empty())
    fail(path + ".pattern.String", "must not be empty");
  return text;
}

void replaceAll(std::string &text, const std::string &from, const std::string &to) {
  std::string out;
  size_t at = 0;
  for (size_t found; (found = text.find(from, at)) != std::string::npos; at = found + from.size())
    out.append(text, at, found - at) += to;
  out.append(text, at);
  text = std::move(out);
}

// ---- normalizers --------------------------------------------------------------------

struct NormalizerStep {
  enum Kind { Bert, Prepend, Replace, Nfc } kind;
  std::string from, to;
  bool cleanText = false, chineseChars = false, stripAccentsAndLowercase = false;
};

void readNormalizer(const Json &json, const std::string &path, std::vector<NormalizerStep> &steps) {
  std::string type =
      componentType(json, path, {"Sequence", "BertNormalizer", "Prepend", "Replace", "NFC"});
  if (type == "Sequence") {
    const Json &list = arrayAt(json, path, "normalizers");
    for (size_t i = 0; i < list.size(); ++i)
      readNormalizer(list[i], path + ".normalizers[" + std::to_string(i) + "]", steps);
  } else if (type == "BertNormalizer") {
    NormalizerStep step{NormalizerStep::Bert, "", ""};
    step.cleanText = optionalBool(json, path, "clean_text", true);
    step.chineseChars = optionalBool(json, path, "handle_chinese_chars", true);
    bool lowercase = optionalBool(json, path, "lowercase", true);
    // strip_accents null follows lowercase, as in BERT.
    bool stripAccents = optionalBool(json, path, "strip_accents", lowercase);
    if (lowercase != stripAccents)
      fail(path, "has lowercase " + std::string(lowercase ? "true" : "false") +
                     " and strip_accents " + (stripAccents ? "true" : "false") +
                     "; kiln supports both true or both false");
    step.stripAccentsAndLowercase = lowercase;
    steps.push_back(step);
  } else if (type == "Prepend") {
    steps.push_back({NormalizerStep::Prepend, "", stringAt(json, path, "prepend")});
  } else if (type == "NFC") {
    steps.push_back({NormalizerStep::Nfc, "", ""});
  } else {
    steps.push_back(
        {NormalizerStep::Replace, stringPattern(json, path), stringAt(json, path, "content")});
  }
}

// HF's BertNormalizer: control characters removed (\t \n \r are whitespace), whitespace
// made ' ', CJK ideographs padded with spaces, then accents stripped and lower-cased.
std::string bertNormalize(std::string_view text, const NormalizerStep &step) {
  std::string out;
  for (size_t at = 0; at < text.size();) {
    uint32_t cp = decodeUtf8(text, at);
    CharClass c = charClass(cp);
    bool control = cp != '\t' && cp != '\n' && cp != '\r' &&
                   (c == CharClass::Other || cp < 0x20 || (cp >= 0x7F && cp <= 0x9F));
    if (step.cleanText && (cp == 0 || cp == kReplacementCharacter || control))
      continue;
    if (step.cleanText && c == CharClass::Whitespace) {
      out += ' ';
      continue;
    }
    bool pad = step.chineseChars && isCjkIdeograph(cp);
    if (pad)
      out += ' ';
    if (step.stripAccentsAndLowercase)
      appendBertNormalized(out, cp);
    else
      appendUtf8(out, cp);
    if (pad)
      out += ' ';
  }
  return out;
}

// How much longer the normalizer steps can make a text: at most `times` x its length +
// `added` bytes. Replace grows each match by content / pattern, Prepend adds its text,
// BertNormalizer and NFC at most triple a character's bytes (a CJK ideograph padded
// with spaces, a decomposed or lower-cased letter). Shipped tokenizers stay within 3x
// + a few bytes (Llama's Prepend "▁" then Replace " " -> "▁"); a file whose steps
// multiply text by thousands (found by fuzz.tokenizer_json: a 1.1 KB file made a
// 13-character prompt 30 KB of tokens and their decoding 670 MB) is refused.
constexpr double kMaxNormalizerGrowth = 16;
constexpr size_t kMaxNormalizerAddedBytes = 1024;

void checkNormalizerGrowth(const std::vector<NormalizerStep> &steps) {
  double times = 1, added = 0;
  for (const NormalizerStep &step : steps) {
    double factor = 1;
    if (step.kind == NormalizerStep::Replace)
      factor = std::max(1.0, double(step.to.size()) / double(step.from.size()));
    else if (step.kind == NormalizerStep::Bert || step.kind == NormalizerStep::Nfc)
      factor = 3;
    times *= factor;
    added = added * factor + (step.kind == NormalizerStep::Prepend ? double(step.to.size()) : 0);
  }
  if (times > kMaxNormalizerGrowth || added > double(kMaxNormalizerAddedBytes)) {
    char what[200];
    std::snprintf(what, sizeof what,
                  "can make a text up to %.0f times longer plus %.0f bytes; kiln accepts at "
                  "most %.0f times plus %zu bytes (no shipped tokenizer comes near)",
                  times, added, kMaxNormalizerGrowth, kMaxNormalizerAddedBytes);
    fail("normalizer", what);
  }
}

// ---- pre-tokenizers -----------------------------------------------------------------

// The regexes of Split pre-tokenizers kiln accepts: GPT-2's (also ByteLevel's, with
// use_regex), Llama 3's (with the contractions' case spelled out in some files) and Qwen
// 2's. Others would compile, but kiln reads \p{Lu} and (?i) as llama.cpp does, not as
// the `tokenizers` library does, so they are not claimed.
constexpr const char *kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
constexpr const char *kSplitPatterns[] = {
    kGpt2Pattern,
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"};

PreTokenizerRegex compilePattern(const std::string &pattern, const std::string &path) {
  auto regex = PreTokenizerRegex::compile(pattern);
  if (!regex)
    fail(path, regex.error());
  return std::move(*regex);
}

enum class PrependScheme { Always, First, Never };

struct PreTokenizerStep {
  enum Kind { Metaspace, ByteLevel, Split, Bert } kind;
  PreTokenizerStep(Kind kind) : kind(kind) {}
  std::string replacement;
  PrependScheme prepend = PrependScheme::Always;
  bool split = false, addPrefixSpace = false;
  // ByteLevel with use_regex, and Split: what splits the words.
  std::vector<PreTokenizerRegex> regexes;
};

PrependScheme readPrependScheme(const Json &json, const std::string &path) {
  // Files before tokenizers 0.14 say add_prefix_space instead.
  if (!optionalMember(json, path, "prepend_scheme"))
    return optionalBool(json, path, "add_prefix_space", true) ? PrependScheme::Always
                                                              : PrependScheme::Never;
  std::string scheme = stringAt(json, path, "prepend_scheme");
  if (scheme == "always")
    return PrependScheme::Always;
  if (scheme == "first")
    return PrependScheme::First;
  if (scheme == "never")
    return PrependScheme::Never;
  fail(path + ".prepend_scheme", "'" + scheme + "' is not one of always, first, never");
}

void readPreTokenizer(const Json &json, const std::string &path,
                      std::vector<PreTokenizerStep> &steps) {
  std::string type = componentType(
      json, path, {"Sequence", "Metaspace", "ByteLevel", "Split", "BertPreTokenizer"});
  if (type == "Sequence") {
    const Json &list = arrayAt(json, path, "pretokenizers");
    for (size_t i = 0; i < list.size(); ++i)
      readPreTokenizer(list[i], path + ".pretokenizers[" + std::to_string(i) + "]", steps);
  } else if (type == "Metaspace") {
    PreTokenizerStep step{PreTokenizerStep::Metaspace};
    step.replacement = characterAt(json, path, "replacement");
    step.prepend = readPrependScheme(json, path);
    step.split = optionalBool(json, path, "split", true);
    steps.push_back(step);
  } else if (type == "ByteLevel") {
    PreTokenizerStep step{PreTokenizerStep::ByteLevel};
    step.addPrefixSpace = optionalBool(json, path, "add_prefix_space", true);
    if (optionalBool(json, path, "use_regex", true))
      step.regexes.push_back(compilePattern(kGpt2Pattern, path));
    steps.push_back(step);
  } else if (type == "Split") {
    const Json &pattern = member(json, path, "pattern");
    std::string regex = stringAt(pattern, path + ".pattern", "Regex");
    std::string behavior = stringAt(json, path, "behavior");
    if (behavior != "Isolated")
      fail(path + ".behavior", "'" + behavior + "' is not supported; kiln supports Isolated");
    if (optionalBool(json, path, "invert", false))
      fail(path + ".invert", "true is not supported");
    if (std::find(std::begin(kSplitPatterns), std::end(kSplitPatterns), regex) == std::end(kSplitPatterns))
      fail(path + ".pattern.Regex", "'" + regex +
                                        "' is not supported; kiln supports the regexes of GPT-2, "
                                        "Llama 3 and Qwen 2");
    PreTokenizerStep step{PreTokenizerStep::Split};
    step.regexes.push_back(compilePattern(regex, path + ".pattern.Regex"));
    steps.push_back(std::move(step));
  } else {
    steps.push_back({PreTokenizerStep::Bert});
  }
}

struct Word {
  std::string text;
  bool atStart; // begins the input
};

// BERT's punctuation: ASCII symbols and Unicode P*.
bool isBertPunctuation(uint32_t cp) {
  CharClass c = charClass(cp);
  return c == CharClass::Punctuation || (cp < 0x7F && c == CharClass::Symbol);
}

void runPreTokenizer(const PreTokenizerStep &step, const Word &word, std::vector<Word> &out) {
  auto emit = [&](std::string_view text, bool first) {
    if (!text.empty())
      out.push_back({std::string(text), word.atStart && first});
  };
  switch (step.kind) {
  case PreTokenizerStep::Metaspace: {
    std::string text = word.text;
    replaceAll(text, " ", step.replacement);
    bool prepend = step.prepend == PrependScheme::Always ||
                   (step.prepend == PrependScheme::First && word.atStart);
    if (prepend && text.compare(0, step.replacement.size(), step.replacement) != 0)
      text = step.replacement + text;
    if (!step.split) {
      emit(text, true);
      return;
    }
    // Each replacement character starts a new word.
    size_t begin = 0;
    for (size_t at = step.replacement.size();
         (at = text.find(step.replacement, at)) != std::string::npos;
         at += step.replacement.size()) {
      if (at > begin) {
        emit(std::string_view(text).substr(begin, at - begin), begin == 0);
        begin = at;
      }
    }
    emit(std::string_view(text).substr(begin), begin == 0);
    return;
  }
  case PreTokenizerStep::ByteLevel: {
    std::string text = word.text;
    if (step.addPrefixSpace && (text.empty() || text[0] != ' '))
      text = " " + text;
    std::vector<std::string_view> pieces =
        step.regexes.empty() ? std::vector<std::string_view>{text} : splitWords(text, step.regexes);
    for (size_t i = 0; i < pieces.size(); ++i) {
      std::string mapped;
      for (char byte : pieces[i])
        mapped += byteLevelCharacter(uint8_t(byte));
      emit(mapped, i == 0);
    }
    return;
  }
  case PreTokenizerStep::Split: {
    std::vector<std::string_view> pieces = splitWords(word.text, step.regexes);
    for (size_t i = 0; i < pieces.size(); ++i)
      emit(pieces[i], i == 0);
    return;
  }
  case PreTokenizerStep::Bert: {
    std::string_view text = word.text;
    size_t begin = 0;
    bool first = true;
    auto cut = [&](size_t end) {
      if (end > begin) {
        emit(text.substr(begin, end - begin), first);
        first = false;
      }
    };
    for (size_t at = 0; at < text.size();) {
      size_t start = at;
      uint32_t cp = decodeUtf8(text, at);
      if (charClass(cp) == CharClass::Whitespace) {
        cut(start);
        begin = at;
      } else if (isBertPunctuation(cp)) {
        cut(start);
        begin = start;
        cut(at);
        begin = at;
      }
    }
    cut(text.size());
    return;
  }
  }
}

// ---- decoders -----------------------------------------------------------------------

struct DecoderStep {
  enum Kind { ByteFallback, Fuse, Strip, Replace, Metaspace, WordPiece, ByteLevel } kind;
  DecoderStep(Kind kind, std::string from = "", std::string to = "")
      : kind(kind), from(std::move(from)), to(std::move(to)) {}
  std::string from, to; // Replace; Strip's content; Metaspace's replacement; WordPiece's prefix
  size_t start = 0, stop = 0;
  PrependScheme prepend = PrependScheme::Always;
  bool cleanup = false;
};

void readDecoder(const Json &json, const std::string &path, std::vector<DecoderStep> &steps) {
  std::string type = componentType(json, path,
                                   {"Sequence", "ByteFallback", "Fuse", "Strip", "Replace",
                                    "Metaspace", "WordPiece", "ByteLevel"});
  if (type == "Sequence") {
    const Json &list = arrayAt(json, path, "decoders");
    for (size_t i = 0; i < list.size(); ++i)
      readDecoder(list[i], path + ".decoders[" + std::to_string(i) + "]", steps);
  } else if (type == "ByteFallback") {
    steps.push_back({DecoderStep::ByteFallback});
  } else if (type == "Fuse") {
    steps.push_back({DecoderStep::Fuse});
  } else if (type == "Strip") {
    DecoderStep step{DecoderStep::Strip};
    step.from = characterAt(json, path, "content");
    step.start = size_t(integerAt(member(json, path, "start"), path + ".start", 0, 1 << 20));
    step.stop = size_t(integerAt(member(json, path, "stop"), path + ".stop", 0, 1 << 20));
    steps.push_back(step);
  } else if (type == "Replace") {
    steps.push_back(
        {DecoderStep::Replace, stringPattern(json, path), stringAt(json, path, "content")});
  } else if (type == "Metaspace") {
    DecoderStep step{DecoderStep::Metaspace, characterAt(json, path, "replacement"), " "};
    step.prepend = readPrependScheme(json, path);
    steps.push_back(step);
  } else if (type == "WordPiece") {
    DecoderStep step{DecoderStep::WordPiece, optionalString(json, path, "prefix", "##"), ""};
    step.cleanup = optionalBool(json, path, "cleanup", true);
    steps.push_back(step);
  } else {
    steps.push_back({DecoderStep::ByteLevel});
  }
}

// The decoder's Replace steps, bounded as the normalizer's are (checkNormalizerGrowth):
// each multiplies the decoded text by at most content / pattern.
void checkDecoderGrowth(const std::vector<DecoderStep> &steps) {
  double times = 1;
  for (const DecoderStep &step : steps)
    if (step.kind == DecoderStep::Replace)
      times *= std::max(1.0, double(step.to.size()) / double(step.from.size()));
  if (times > kMaxNormalizerGrowth) {
    char what[160];
    std::snprintf(what, sizeof what,
                  "can make a text up to %.0f times longer; kiln accepts at most %.0f times "
                  "(no shipped tokenizer comes near)",
                  times, kMaxNormalizerGrowth);
    fail("decoder", what);
  }
}

// Bytes that may not be UTF-8 -> valid UTF-8, each bad byte becoming U+FFFD.
std::string lossyUtf8(std::string_view bytes) {
  std::string out;
  for (size_t at = 0; at < bytes.size();)
    appendUtf8(out, decodeUtf8(bytes, at));
  return out;
}

bool isValidUtf8(std::string_view bytes) {
  for (size_t at = 0; at < bytes.size();) {
    size_t begin = at;
    if (decodeUtf8(bytes, at) == kReplacementCharacter &&
        bytes.substr(begin, at - begin) != "\xef\xbf\xbd")
      return false;
  }
  return true;
}

// The byte of a "<0xNN>" token, or -1.
int byteTokenValue(const std::string &token) {
  unsigned value;
  char end;
  if (token.size() == 6 && std::sscanf(token.c_str(), "<0x%2X%c", &value, &end) == 2 && end == '>')
    return int(value);
  return -1;
}

// HF's WordPiece cleanup (clean_up_tokenization_spaces).
void cleanUpTokenization(std::string &text) {
  for (auto [from, to] : {std::pair<const char *, const char *>{" .", "."},
                          {" ?", "?"},
                          {" !", "!"},
                          {" ,", ","},
                          {" ' ", "'"},
                          {" n't", "n't"},
                          {" 'm", "'m"},
                          {" do not", " don't"},
                          {" 's", "'s"},
                          {" 've", "'ve"},
                          {" 're", "'re"}})
    replaceAll(text, from, to);
}

void runDecoder(const DecoderStep &step, std::vector<std::string> &tokens) {
  switch (step.kind) {
  case DecoderStep::ByteFallback: {
    std::vector<std::string> out;
    std::string bytes;
    size_t byteCount = 0;
    auto flush = [&] {
      if (!byteCount)
        return;
      if (isValidUtf8(bytes))
        out.push_back(bytes);
      else
        for (size_t i = 0; i < byteCount; ++i)
          out.push_back("\xef\xbf\xbd");
      bytes.clear();
      byteCount = 0;
    };
    for (std::string &token : tokens) {
      int byte = byteTokenValue(token);
      if (byte >= 0) {
        bytes += char(byte);
        ++byteCount;
        continue;
      }
      flush();
      out.push_back(std::move(token));
    }
    flush();
    tokens = std::move(out);
    return;
  }
  case DecoderStep::Fuse:
  case DecoderStep::ByteLevel: {
    std::string joined;
    for (const std::string &token : tokens)
      joined += token;
    if (step.kind == DecoderStep::ByteLevel) {
      std::string bytes;
      for (size_t at = 0; at < joined.size();) {
        size_t begin = at;
        int byte = byteLevelByte(decodeUtf8(joined, at));
        if (byte >= 0)
          bytes += char(byte);
        else
          bytes.append(joined, begin, at - begin);
      }
      joined = lossyUtf8(bytes);
    }
    tokens.assign(1, joined);
    return;
  }
  case DecoderStep::Strip:
    for (std::string &token : tokens) {
      for (size_t i = 0; i < step.start && token.compare(0, step.from.size(), step.from) == 0; ++i)
        token.erase(0, step.from.size());
      for (size_t i = 0;
           i < step.stop && token.size() >= step.from.size() &&
           token.compare(token.size() - step.from.size(), step.from.size(), step.from) == 0;
           ++i)
        token.resize(token.size() - step.from.size());
    }
    return;
  case DecoderStep::Replace:
    for (std::string &token : tokens)
      replaceAll(token, step.from, step.to);
    return;
  case DecoderStep::Metaspace:
    // As HF does, the first token loses every replacement character, not only a leading one.
    for (size_t i = 0; i < tokens.size(); ++i)
      replaceAll(tokens[i], step.from, i == 0 && step.prepend != PrependScheme::Never ? "" : " ");
    return;
  case DecoderStep::WordPiece:
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i != 0) {
        if (tokens[i].compare(0, step.from.size(), step.from) == 0)
          tokens[i].erase(0, step.from.size());
        else
          tokens[i] = " " + tokens[i];
      }
      if (step.cleanup)
        cleanUpTokenization(tokens[i]);
    }
    return;
  }
}

// ---- the models ---------------------------------------------------------------------

struct BpeModel {
  // (left id, right id) -> (rank, merged id).
  std::unordered_map<uint64_t, std::pair<uint32_t, TokenId>> merges;
  bool byteFallback = false, fuseUnknown = false, ignoreMerges = false;
  TokenId byteTokens[256];
};

struct WordPieceModel {
  std::string continuingPrefix = "##";
  size_t maxCharacters = 100, longestToken = 0;
};

uint64_t pairKey(TokenId left, TokenId right) {
  return uint64_t(uint32_t(left)) << 32 | uint32_t(right);
}

class HuggingFaceTokenizer final : public Tokenizer {
public:
  explicit HuggingFaceTokenizer(Vocabulary vocab) : Tokenizer(std::move(vocab)) {}

  const char *modelName() const override { return wordPiece ? "WordPiece" : "BPE"; }

  std::vector<NormalizerStep> normalizers;
  std::vector<PreTokenizerStep> preTokenizers;
  std::vector<DecoderStep> decoders;
  std::optional<BpeModel> bpe;
  std::optional<WordPieceModel> wordPiece;

  // The reader fills the shared base-class state too.
  using Tokenizer::addedTokens;
  using Tokenizer::fileMaxLength;
  using Tokenizer::matching;
  using Tokenizer::specialPrefix;
  using Tokenizer::specialSuffix;
  using Tokenizer::truncateFromStart;
  using Tokenizer::vocab;

  std::string normalize(std::string_view text) const {
    std::string normalized(text);
    for (const NormalizerStep &step : normalizers) {
      if (step.kind == NormalizerStep::Bert)
        normalized = bertNormalize(normalized, step);
      else if (step.kind == NormalizerStep::Prepend && !normalized.empty())
        normalized = step.to + normalized;
      else if (step.kind == NormalizerStep::Replace)
        replaceAll(normalized, step.from, step.to);
      else if (step.kind == NormalizerStep::Nfc)
        normalized = normalizeNfc(normalized);
    }
    return normalized;
  }

  // The added tokens matched in normalized text, by their normalized content, as HF's
  // AddedVocabulary does.
  std::vector<AddedToken> normalizedTokens;

protected:
  void encodeText(std::string_view text, bool atStart, std::vector<TokenId> &out) const override {
    std::string normalized = normalize(text);
    std::vector<const AddedToken *> tokens;
    for (const AddedToken &token : normalizedTokens)
      tokens.push_back(&token);
    for (const TextFragment &fragment :
         splitAtAddedTokens(normalized, tokens, AddedTokenMatching::LeftmostLongest)) {
      if (fragment.token != kNoToken)
        out.push_back(fragment.token);
      else if (fragment.length)
        encodeNormalized(normalized.substr(fragment.begin, fragment.length),
                         atStart && fragment.begin == 0, out);
    }
  }

  void encodeNormalized(std::string text, bool atStart, std::vector<TokenId> &out) const {
    std::vector<Word> words{{std::move(text), atStart}};
    for (const PreTokenizerStep &step : preTokenizers) {
      std::vector<Word> next;
      for (const Word &word : words)
        runPreTokenizer(step, word, next);
      words = std::move(next);
    }
    for (const Word &word : words) {
      if (word.text.empty())
        continue;
      if (bpe)
        encodeBpeWord(word.text, out);
      else
        encodeWordPiece(vocab, word.text, "", wordPiece->continuingPrefix, wordPiece->maxCharacters,
                        wordPiece->longestToken, out);
    }
  }

  void appendPiece(TokenId id, std::string &out) const override { out += vocab.tokens[id]; }

  // HF's decode(ids, skip_special_tokens=True): special added tokens are dropped, the
  // rest go through the decoder (or are joined by spaces without one).
  std::string render(const std::vector<TokenId> &ids) const override {
    std::vector<std::string> tokens;
    for (TokenId id : ids)
      if (vocab.types[id] != TokenType::Control)
        tokens.push_back(vocab.tokens[id]);
    if (decoders.empty()) {
      std::string text;
      for (size_t i = 0; i < tokens.size(); ++i)
        text += (i ? " " : "") + tokens[i];
      return text;
    }
    for (const DecoderStep &step : decoders)
      runDecoder(step, tokens);
    std::string text;
    for (const std::string &token : tokens)
      text += token;
    return text;
  }

private:
  void encodeBpeWord(const std::string &word, std::vector<TokenId> &out) const {
    TokenId whole = vocab.find(word);
    if (bpe->ignoreMerges && whole != kNoToken) {
      out.push_back(whole);
      return;
    }
    // The word's characters as symbols: a vocabulary entry, its byte tokens, or unknown.
    std::vector<TokenId> symbols;
    std::vector<Piece> pieces;
    auto push = [&](TokenId id) {
      int index = int(pieces.size());
      pieces.push_back({size_t(index), 1, index - 1, index + 1});
      symbols.push_back(id);
    };
    for (size_t at = 0; at < word.size();) {
      size_t begin = at;
      decodeUtf8(word, at);
      std::string_view character = std::string_view(word).substr(begin, at - begin);
      TokenId id = vocab.find(character);
      if (id != kNoToken) {
        push(id);
        continue;
      }
      if (bpe->byteFallback && std::all_of(character.begin(), character.end(), [&](char byte) {
            return bpe->byteTokens[uint8_t(byte)] != kNoToken;
          })) {
        for (char byte : character)
          push(bpe->byteTokens[uint8_t(byte)]);
        continue;
      }
      if (vocab.unknown == kNoToken)
        continue; // HF fails here; kiln drops what it cannot represent.
      if (bpe->fuseUnknown && !symbols.empty() && symbols.back() == vocab.unknown)
        continue;
      push(vocab.unknown);
    }
    if (pieces.empty())
      return;
    pieces.back().next = -1;
    // Lowest rank first, leftmost on ties, as HF's Word::merge_all.
    mergePieces(
        pieces,
        [&](int left, int right) -> std::optional<double> {
          auto merge = bpe->merges.find(pairKey(symbols[left], symbols[right]));
          if (merge == bpe->merges.end())
            return std::nullopt;
          return -double(merge->second.first);
        },
        [&](int left, int right) {
          symbols[left] = bpe->merges.at(pairKey(symbols[left], symbols[right])).second;
        });
    for (int i = 0; i != -1; i = pieces[i].next)
      out.push_back(symbols[i]);
  }
};

// ---- reading the file ---------------------------------------------------------------

TokenId requiredTokenId(const Vocabulary &vocab, const std::string &token,
                        const std::string &path) {
  TokenId id = vocab.find(token);
  if (id == kNoToken)
    fail(path, "names '" + token + "', which is not in the vocabulary");
  return id;
}

// model.vocab (token -> id) and added_tokens into the vocabulary.
void readVocabulary(const Json &root, Vocabulary &vocab, std::vector<AddedToken> &added) {
  const Json &entries = member(member(root, "", "model"), "model", "vocab");
  if (!entries.is_object())
    fail("model.vocab",
         "must be an object of token: id (found " + std::string(entries.type_name()) + ")");
  std::vector<std::pair<std::string, int64_t>> tokens;
  for (auto it = entries.begin(); it != entries.end(); ++it)
    tokens.emplace_back(it.key(),
                        integerAt(it.value(), "model.vocab['" + it.key() + "']", 0, INT32_MAX - 1));
  std::vector<TokenType> types(tokens.size(), TokenType::Normal);
  if (const Json *list = optionalMember(root, "", "added_tokens")) {
    if (!list->is_array())
      fail("added_tokens", "must be an array (found " + std::string(list->type_name()) + ")");
    for (size_t i = 0; i < list->size(); ++i) {
      std::string path = "added_tokens[" + std::to_string(i) + "]";
      const Json &entry = (*list)[i];
      AddedToken token;
      token.text = stringAt(entry, path, "content");
      if (token.text.empty())
        fail(path + ".content", "must not be empty");
      token.id = TokenId(integerAt(member(entry, path, "id"), path + ".id", 0, INT32_MAX - 1));
      token.lstrip = optionalBool(entry, path, "lstrip", false);
      token.rstrip = optionalBool(entry, path, "rstrip", false);
      token.singleWord = optionalBool(entry, path, "single_word", false);
      bool special = optionalBool(entry, path, "special", false);
      token.normalized = optionalBool(entry, path, "normalized", !special);
      tokens.emplace_back(token.text, token.id);
      types.push_back(special ? TokenType::Control : TokenType::UserDefined);
      added.push_back(std::move(token));
    }
  }
  int64_t largest = -1;
  for (auto &[text, id] : tokens)
    largest = std::max(largest, id);
  if (largest < 0)
    fail("model.vocab", "is empty");
  // Ids may leave gaps (unused rows of the embedding); those tokens have no text. But
  // the tables below have a row per id up to the largest: an id far beyond the number
  // of tokens (a forged 48888888 among 14) would allocate gigabytes for nothing.
  int64_t limit = std::min<int64_t>(2 * int64_t(tokens.size()) + 1024, int64_t(1) << 24);
  if (largest >= limit)
    for (size_t i = 0; i < tokens.size(); ++i)
      if (tokens[i].second == largest)
        fail(i >= entries.size() ? "added_tokens[" + std::to_string(i - entries.size()) + "].id"
                                 : "model.vocab['" + tokens[i].first + "']",
             std::to_string(largest) + " is far beyond the " + std::to_string(tokens.size()) +
                 " tokens (ids must stay below " + std::to_string(limit) +
                 ": twice the token count plus 1024, at most 2^24)");
  vocab.tokens.assign(size_t(largest) + 1, "");
  vocab.types.assign(size_t(largest) + 1, TokenType::Unused);
  std::vector<bool> taken(size_t(largest) + 1, false);
  vocab.ids.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    auto &[text, id] = tokens[i];
    bool isAdded = i >= entries.size();
    if (taken[size_t(id)] && (!isAdded || vocab.tokens[size_t(id)] != text))
      fail(isAdded ? "added_tokens[" + std::to_string(i - entries.size()) + "].id"
                   : "model.vocab['" + text + "']",
           std::to_string(id) + " is already the id of '" + vocab.tokens[size_t(id)] + "'");
    taken[size_t(id)] = true;
    vocab.tokens[size_t(id)] = text;
    vocab.types[size_t(id)] = types[i];
    vocab.ids[text] = TokenId(id);
  }
}

void readBpe(const Json &model, HuggingFaceTokenizer &tokenizer) {
  BpeModel bpe;
  Vocabulary &vocab = tokenizer.vocab;
  for (const char *key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (optionalMember(model, "model", key) && !stringAt(model, "model", key).empty())
      fail(std::string("model.") + key,
           "'" + stringAt(model, "model", key) + "' is not supported (only null)");
  if (const Json *dropout = optionalMember(model, "model", "dropout"))
    if (!dropout->is_number() || dropout->get<double>() != 0.0)
      fail("model.dropout",
           describe(*dropout) + " is not supported (only null: kiln's encoding is deterministic)");
  bpe.byteFallback = optionalBool(model, "model", "byte_fallback", false);
  bpe.fuseUnknown = optionalBool(model, "model", "fuse_unk", false);
  bpe.ignoreMerges = optionalBool(model, "model", "ignore_merges", false);
  for (int byte = 0; byte < 256; ++byte) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", byte);
    bpe.byteTokens[byte] = bpe.byteFallback ? vocab.find(name) : kNoToken;
    if (bpe.byteTokens[byte] != kNoToken)
      vocab.types[bpe.byteTokens[byte]] = TokenType::Byte;
  }
  const Json &merges = arrayAt(model, "model", "merges");
  bpe.merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    std::string path = "model.merges[" + std::to_string(i) + "]";
    std::string left, right;
    // "left right" (tokenizers < 0.20) or ["left", "right"].
    if (merges[i].is_string()) {
      std::string merge = merges[i].get<std::string>();
      size_t space = merge.find(' ', 1);
      if (space == std::string::npos || space + 1 == merge.size())
        fail(path, "'" + merge + "' is not two tokens separated by a space");
      left = merge.substr(0, space);
      right = merge.substr(space + 1);
    } else if (merges[i].is_array() && merges[i].size() == 2 && merges[i][0].is_string() &&
               merges[i][1].is_string()) {
      left = merges[i][0].get<std::string>();
      right = merges[i][1].get<std::string>();
    } else {
      fail(path,
           "must be \"left right\" or [\"left\", \"right\"] (found " + describe(merges[i]) + ")");
    }
    TokenId leftId = requiredTokenId(vocab, left, path),
            rightId = requiredTokenId(vocab, right, path);
    TokenId merged = requiredTokenId(vocab, left + right, path);
    // A repeated pair keeps its first (best) rank, as HF does.
    bpe.merges.emplace(pairKey(leftId, rightId), std::pair<uint32_t, TokenId>{uint32_t(i), merged});
  }
  tokenizer.bpe = std::move(bpe);
}

void readWordPiece(const Json &model, HuggingFaceTokenizer &tokenizer) {
  WordPieceModel wordPiece;
  wordPiece.continuingPrefix = optionalString(model, "model", "continuing_subword_prefix", "##");
  if (const Json *max = optionalMember(model, "model", "max_input_chars_per_word"))
    wordPiece.maxCharacters =
        size_t(integerAt(*max, "model.max_input_chars_per_word", 1, INT32_MAX));
  for (const std::string &token : tokenizer.vocab.tokens)
    wordPiece.longestToken = std::max(wordPiece.longestToken, token.size());
  if (tokenizer.vocab.unknown == kNoToken)
    fail("model.unk_token", "is missing (WordPiece needs an unknown token)");
  tokenizer.wordPiece = std::move(wordPiece);
}

// post_processor -> the special tokens around a sequence.
void readPostProcessor(const Json &json, const std::string &path, HuggingFaceTokenizer &tokenizer) {
  std::string type = componentType(
      json, path,
      {"Sequence", "TemplateProcessing", "BertProcessing", "RobertaProcessing", "ByteLevel"});
  if (type == "Sequence") {
    const Json &list = arrayAt(json, path, "processors");
    for (size_t i = 0; i < list.size(); ++i)
      readPostProcessor(list[i], path + ".processors[" + std::to_string(i) + "]", tokenizer);
  } else if (type == "BertProcessing" || type == "RobertaProcessing") {
    // cls and sep are [token, id] pairs.
    for (const char *key : {"cls", "sep"}) {
      const Json &pair = member(json, path, key);
      std::string at = path + "." + key;
      if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string())
        fail(at, "must be [token, id] (found " + describe(pair) + ")");
      TokenId id = TokenId(integerAt(pair[1], at + "[1]", 0, int64_t(tokenizer.vocab.size()) - 1));
      (std::string(key) == "cls" ? tokenizer.specialPrefix : tokenizer.specialSuffix).push_back(id);
    }
  } else if (type == "TemplateProcessing") {
    const Json &single = arrayAt(json, path, "single");
    const Json &specials = member(json, path, "special_tokens");
    bool afterSequence = false;
    for (size_t i = 0; i < single.size(); ++i) {
      std::string at = path + ".single[" + std::to_string(i) + "]";
      if (optionalMember(single[i], at, "Sequence")) {
        afterSequence = true;
        continue;
      }
      std::string name =
          stringAt(member(single[i], at, "SpecialToken"), at + ".SpecialToken", "id");
      if (!specials.is_object() || !specials.contains(name))
        fail(at + ".SpecialToken.id", "'" + name + "' is not in " + path + ".special_tokens");
      std::string specialPath = path + ".special_tokens['" + name + "']";
      const Json &ids = arrayAt(specials[name], specialPath, "ids");
      for (size_t k = 0; k < ids.size(); ++k) {
        TokenId id = TokenId(integerAt(ids[k], specialPath + ".ids[" + std::to_string(k) + "]", 0,
                                       int64_t(tokenizer.vocab.size()) - 1));
        (afterSequence ? tokenizer.specialSuffix : tokenizer.specialPrefix).push_back(id);
      }
    }
  }
}

void readTruncation(const Json &root, HuggingFaceTokenizer &tokenizer) {
  const Json *truncation = optionalMember(root, "", "truncation");
  if (!truncation)
    return;
  tokenizer.fileMaxLength = size_t(integerAt(member(*truncation, "truncation", "max_length"),
                                             "truncation.max_length", 1, INT32_MAX));
  std::string direction = optionalString(*truncation, "truncation", "direction", "Right");
  if (direction != "Right" && direction != "Left")
    fail("truncation.direction", "'" + direction + "' is not Right or Left");
  tokenizer.truncateFromStart = direction == "Left";
}

std::unique_ptr<HuggingFaceTokenizer> readTokenizer(const Json &root) {
  if (!root.is_object())
    fail("the top level", "must be an object (found " + std::string(root.type_name()) + ")");
  const Json &model = member(root, "", "model");
  std::string type = componentType(model, "model", {"BPE", "WordPiece"});
  Vocabulary vocab;
  std::vector<AddedToken> added;
  readVocabulary(root, vocab, added);
  if (const Json *unknown = optionalMember(model, "model", "unk_token")) {
    if (!unknown->is_string())
      fail("model.unk_token", "must be a string (found " + describe(*unknown) + ")");
    vocab.unknown = requiredTokenId(vocab, unknown->get<std::string>(), "model.unk_token");
  }
  auto tokenizer = std::make_unique<HuggingFaceTokenizer>(std::move(vocab));
  tokenizer->addedTokens = std::move(added);
  tokenizer->matching = AddedTokenMatching::LeftmostLongest;
  if (type == "BPE")
    readBpe(model, *tokenizer);
  else
    readWordPiece(model, *tokenizer);
  if (const Json *normalizer = optionalMember(root, "", "normalizer"))
    readNormalizer(*normalizer, "normalizer", tokenizer->normalizers);
  checkNormalizerGrowth(tokenizer->normalizers);
  if (const Json *preTokenizer = optionalMember(root, "", "pre_tokenizer"))
    readPreTokenizer(*preTokenizer, "pre_tokenizer", tokenizer->preTokenizers);
  if (const Json *postProcessor = optionalMember(root, "", "post_processor"))
    readPostProcessor(*postProcessor, "post_processor", *tokenizer);
  if (const Json *decoder = optionalMember(root, "", "decoder"))
    readDecoder(*decoder, "decoder", tokenizer->decoders);
  checkDecoderGrowth(tokenizer->decoders);
  readTruncation(root, *tokenizer);
  for (const AddedToken &token : tokenizer->addedTokens) {
    if (!token.normalized)
      continue;
    AddedToken normalized = token;
    normalized.text = tokenizer->normalize(token.text);
    if (normalized.text.empty())
      continue;
    // HF's added vocabulary knows such a token by its normalized text (decoding too).
    tokenizer->vocab.tokens[size_t(token.id)] = normalized.text;
    tokenizer->vocab.ids[normalized.text] = token.id;
    tokenizer->normalizedTokens.push_back(std::move(normalized));
  }
  // BOS is the post-processor's single leading token (<s>, [CLS]); EOS and a better BOS
  // come from tokenizer_config.json when there is one.
  if (tokenizer->specialPrefix.size() == 1) {
    tokenizer->vocab.bos = tokenizer->specialPrefix[0];
    tokenizer->vocab.addBos = true;
  }
  if (tokenizer->specialSuffix.size() == 1)
    tokenizer->vocab.eos = tokenizer->specialSuffix[0];
  return tokenizer;
}

std::optional<std::string> readTextFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return std::nullopt;
  std::stringstream contents;
  contents << in.rdbuf();
  if (in.bad())
    return std::nullopt;
  return contents.str();
}

// tokenizer_config.json's bos_token / eos_token: a string or {"content": ...}.
void readTokenizerConfig(const std::string &path, Vocabulary &vocab) {
  std::optional<std::string> text = readTextFile(path);
  if (!text)
    return;
  Json config = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!config.is_object())
    return;
  for (auto [key, id] :
       {std::pair<const char *, TokenId *>{"bos_token", &vocab.bos}, {"eos_token", &vocab.eos}}) {
    auto found = config.find(key);
    if (found == config.end())
      continue;
    const Json *name = &*found;
    if (name->is_object() && name->contains("content"))
      name = &(*name)["content"];
    if (name->is_string() && vocab.find(name->get<std::string>()) != kNoToken)
      *id = vocab.find(name->get<std::string>());
  }
}

} // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::fromHuggingFaceJson(std::string_view json,
                                                                  const std::string &source) {
  try {
    Json root = Json::parse(json.begin(), json.end());
    return std::unique_ptr<Tokenizer>(readTokenizer(root));
  } catch (const Json::parse_error &error) {
    return Error{source + ": not valid JSON at byte " + std::to_string(error.byte)};
  } catch (const FormatError &error) {
    return Error{source + ": " + error.message};
  } catch (const Json::exception &error) {
    return Error{source + ": " + error.what()};
  }
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::fromHuggingFace(const std::string &path) {
  std::string file = path, directory;
  struct stat status;
  if (::stat(path.c_str(), &status) == 0 && S_ISDIR(status.st_mode)) {
    directory = path;
    file = path + "/tokenizer.json";
  } else {
    size_t slash = path.rfind('/');
    directory = slash == std::string::npos ? "." : path.substr(0, slash);
  }
  std::optional<std::string> text = readTextFile(file);
  if (!text)
    return Error{file + ": cannot be read"};
  auto tokenizer = fromHuggingFaceJson(*text, file);
  if (tokenizer)
    readTokenizerConfig(directory + "/tokenizer_config.json", (*tokenizer)->vocab);
  return tokenizer;
}

} // namespace kiln::llm
