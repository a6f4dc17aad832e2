// PreTokenizerRegex: a recursive-descent parser from the pattern to a tree, the tree
// compiled to Pike VM instructions (one program for the pattern and one per lookahead),
// and the VM that runs them over code points.
#include "PreTokenizerRegex.h"

#include <algorithm>
#include <cctype>
#include <string>

namespace kiln::llm {

CodePointText::CodePointText(std::string_view text) {
  for (size_t at = 0; at < text.size();) {
    offsets.push_back(at);
    uint32_t codePoint = decodeUtf8(text, at);
    codePoints.push_back(codePoint);
    classes.push_back(charClass(codePoint));
  }
  offsets.push_back(text.size());
}

bool PreTokenizerRegex::CharSet::contains(uint32_t codePoint, CharClass charClass) const {
  bool in = (classes >> unsigned(charClass)) & 1;
  // llama.cpp hands std::regex every non-ASCII space as U+000B (so that \s matches it):
  // no literal range takes one.
  if (charClass == CharClass::Whitespace && codePoint >= 0x80)
    codePoint = 0x0B;
  if (!in) {
    auto after = std::upper_bound(ranges.begin(), ranges.end(), codePoint,
                                  [](uint32_t cp, const auto &range) { return cp < range.first; });
    in = after != ranges.begin() && std::prev(after)->second >= codePoint;
  }
  return in != negated;
}

namespace {

using CharSet = PreTokenizerRegex::CharSet;
using Instruction = PreTokenizerRegex::Instruction;
using Op = PreTokenizerRegex::Op;
using Program = PreTokenizerRegex::Program;

constexpr uint8_t bit(CharClass c) { return uint8_t(1u << unsigned(c)); }
constexpr uint8_t kAllClasses = 0x7F; // the seven CharClass values
constexpr uint32_t kUnbounded = UINT32_MAX;
// Bounds that keep a pattern from compiling to an unreasonable program.
constexpr uint32_t kMaxRepeat = 1000, kMaxDepth = 32;
constexpr size_t kMaxInstructions = 1 << 16;

// CJK ideographs as llama.cpp's unicode_cpt_is_han lists them: the Unified Ideographs,
// Extensions A to F, and the Compatibility Ideographs and their Supplement.
constexpr std::pair<uint32_t, uint32_t> kHanRanges[] = {
    {0x3400, 0x4DBF},   {0x4E00, 0x9FFF},   {0xF900, 0xFAFF},
    {0x20000, 0x2A6DF}, {0x2A700, 0x2B73F}, {0x2B740, 0x2B81F},
    {0x2B820, 0x2CEAF}, {0x2CEB0, 0x2EBEF}, {0x2F800, 0x2FA1F}};

// Part of a class: whole character classes, or ranges (never both, so that the
// complement of an escape such as \D or \P{L} is again one of the two).
struct SetPart {
  uint8_t classes = 0;
  std::vector<std::pair<uint32_t, uint32_t>> ranges;

  static SetPart character(uint32_t c) { return {0, {{c, c}}}; }
  SetPart complement() const {
    if (ranges.empty())
      return {uint8_t(kAllClasses & ~classes), {}};
    std::vector<std::pair<uint32_t, uint32_t>> sorted = ranges, out;
    std::sort(sorted.begin(), sorted.end());
    uint32_t next = 0;
    for (auto [first, last] : sorted) {
      if (first > next)
        out.push_back({next, first - 1});
      next = std::max(next, last + 1);
    }
    if (next <= 0x10FFFF)
      out.push_back({next, 0x10FFFF});
    return {0, out};
  }
};

// The pattern as a tree.
struct Node {
  enum Kind { Sequence, Alternation, Set, Repeat, End, Look } kind;
  explicit Node(Kind kind) : kind(kind) {}
  std::vector<Node> children; // Sequence, Alternation: the items; Repeat, Look: one
  uint32_t set = 0;
  uint32_t min = 0, max = 0;
  bool negative = false;
};

struct PatternError {
  std::string message;
};

} // namespace

class RegexCompiler {
public:
  explicit RegexCompiler(std::string_view pattern) : pattern(pattern) {
    for (size_t at = 0; at < pattern.size();)
      text.push_back(decodeUtf8(pattern, at));
  }

  PreTokenizerRegex compile() {
    Node root = alternation(0);
    if (at < text.size())
      fail("unbalanced ')'");
    Program main;
    emit(root, main);
    main.push_back({Op::Match});
    regex.programs.insert(regex.programs.begin(), std::move(main));
    // Lookahead programs were numbered from 0 before the main one went in front.
    for (Program &program : regex.programs)
      for (Instruction &instruction : program)
        if (instruction.op == Op::Look)
          ++instruction.x;
    return std::move(regex);
  }

private:
  std::string_view pattern;
  std::vector<uint32_t> text;
  size_t at = 0;
  size_t instructions = 0;
  PreTokenizerRegex regex;

  [[noreturn]] void fail(const std::string &what) const {
    throw PatternError{"regex '" + std::string(pattern) + "': " + what + " at character " +
                       std::to_string(at)};
  }
  bool peek(uint32_t c) const { return at < text.size() && text[at] == c; }
  bool take(uint32_t c) {
    if (!peek(c))
      return false;
    ++at;
    return true;
  }
  uint32_t next() {
    if (at == text.size())
      fail("unexpected end");
    return text[at++];
  }

  Node alternation(uint32_t depth) {
    if (depth > kMaxDepth)
      fail("groups nest too deep");
    Node choice{Node::Alternation};
    choice.children.push_back(sequence(depth));
    while (take('|'))
      choice.children.push_back(sequence(depth));
    return choice.children.size() == 1 ? std::move(choice.children[0]) : std::move(choice);
  }

  Node sequence(uint32_t depth) {
    Node items{Node::Sequence};
    while (at < text.size() && !peek('|') && !peek(')'))
      items.children.push_back(quantified(depth));
    return items;
  }

  Node quantified(uint32_t depth) {
    Node atom = this->atom(depth);
    uint32_t min, max;
    if (take('?'))
      min = 0, max = 1;
    else if (take('*'))
      min = 0, max = kUnbounded;
    else if (take('+'))
      min = 1, max = kUnbounded;
    else if (take('{')) {
      min = max = number();
      if (take(','))
        max = peek('}') ? kUnbounded : number();
      if (!take('}') || max < min)
        fail("malformed {n,m}");
    } else {
      return atom;
    }
    if (atom.kind == Node::End || atom.kind == Node::Look)
      fail("an assertion cannot repeat");
    // Unbounded loops always consume, so no thread can come back to where it was without
    // moving: the lookaheads' memo below relies on it.
    if (max == kUnbounded && nullable(atom))
      fail("a repeat of what can match nothing is not supported");
    if (peek('?') || peek('+') || peek('*') || peek('{'))
      fail("lazy and possessive repeats are not supported");
    Node repeat{Node::Repeat};
    repeat.min = min;
    repeat.max = max;
    repeat.children.push_back(std::move(atom));
    return repeat;
  }

  static bool nullable(const Node &node) {
    switch (node.kind) {
    case Node::Sequence:
      return std::all_of(node.children.begin(), node.children.end(), nullable);
    case Node::Alternation:
      return std::any_of(node.children.begin(), node.children.end(), nullable);
    case Node::Repeat:
      return node.min == 0 || nullable(node.children[0]);
    case Node::Set:
      return false;
    case Node::End:
    case Node::Look:
      return true;
    }
    return true;
  }

  uint32_t number() {
    uint32_t value = 0;
    size_t start = at;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
      value = value * 10 + (text[at++] - '0');
      if (value > kMaxRepeat)
        fail("a repeat count above " + std::to_string(kMaxRepeat));
    }
    if (at == start)
      fail("expected a number");
    return value;
  }

  Node atom(uint32_t depth) {
    uint32_t c = next();
    switch (c) {
    case '(': {
      bool look = false, negative = false, savedCaseless = caseless;
      if (take('?')) {
        if (take(':')) {
        } else if (take('i')) {
          if (!take(':'))
            fail("only (?i:...) is supported of the inline flags");
          caseless = true;
        } else if (take('=') || (negative = take('!'))) {
          look = true;
        } else {
          fail("unsupported group syntax");
        }
      }
      Node inner = alternation(depth + 1);
      caseless = savedCaseless;
      if (!take(')'))
        fail("missing ')'");
      if (!look)
        return inner;
      Node lookahead{Node::Look};
      lookahead.negative = negative;
      lookahead.children.push_back(std::move(inner));
      return lookahead;
    }
    case '[':
      return set(classBody());
    case '\\':
      return set(escape());
    case '$':
      return Node(Node::End);
    case '*':
    case '+':
    case '?':
    case '{':
      fail("nothing to repeat");
    case '.':
    case '^':
      fail("'" + std::string(1, char(c)) + "' is not supported");
    default:
      return set(literal(c));
    }
  }

  // A literal character, both cases of an ASCII letter inside (?i:...).
  bool caseless = false;
  CharSet literal(uint32_t c) {
    CharSet set;
    addRange(set, c, c);
    return set;
  }
  void addRange(CharSet &set, uint32_t first, uint32_t last) {
    set.ranges.push_back({first, last});
    if (!caseless)
      return;
    auto addOtherCase = [&](uint32_t from, uint32_t to, uint32_t otherFrom) {
      uint32_t low = std::max(first, from), high = std::min(last, to);
      if (low <= high)
        set.ranges.push_back({low - from + otherFrom, high - from + otherFrom});
    };
    addOtherCase('A', 'Z', 'a');
    addOtherCase('a', 'z', 'A');
  }

  Node set(CharSet charSet) {
    std::sort(charSet.ranges.begin(), charSet.ranges.end());
    std::vector<std::pair<uint32_t, uint32_t>> merged;
    for (auto range : charSet.ranges) {
      if (!merged.empty() && range.first <= merged.back().second + 1)
        merged.back().second = std::max(merged.back().second, range.second);
      else
        merged.push_back(range);
    }
    charSet.ranges = std::move(merged);
    Node node{Node::Set};
    node.set = uint32_t(regex.sets.size());
    regex.sets.push_back(std::move(charSet));
    return node;
  }

  CharSet classBody() {
    CharSet set;
    set.negated = take('^');
    if (peek(']'))
      fail("an empty class");
    while (!take(']')) {
      uint32_t first;
      if (take('\\')) {
        SetPart part = escapePart();
        if (!part.ranges.empty() && part.ranges.size() == 1 &&
            part.ranges[0].first == part.ranges[0].second && peek('-')) {
          first = part.ranges[0].first;
        } else {
          set.classes |= part.classes;
          for (auto [low, high] : part.ranges)
            addRange(set, low, high);
          continue;
        }
      } else {
        first = next();
      }
      // A '-' between two characters makes a range; before ']' it is itself.
      if (peek('-') && at + 1 < text.size() && text[at + 1] != ']') {
        ++at;
        uint32_t last = next();
        if (last == '\\') {
          SetPart part = escapePart();
          if (part.ranges.size() != 1 || part.ranges[0].first != part.ranges[0].second)
            fail("a class escape cannot end a range");
          last = part.ranges[0].first;
        }
        if (last < first)
          fail("a range out of order");
        addRange(set, first, last);
      } else {
        addRange(set, first, first);
      }
    }
    return set;
  }

  CharSet escape() {
    SetPart part = escapePart();
    CharSet set;
    set.classes = part.classes;
    for (auto [low, high] : part.ranges)
      addRange(set, low, high);
    return set;
  }

  // The escape after a backslash: a class (\s, \d, \p{L}, ...) or one character.
  SetPart escapePart() {
    uint32_t c = next();
    switch (c) {
    case 's':
      return {bit(CharClass::Whitespace), {}};
    case 'S':
      return SetPart{bit(CharClass::Whitespace), {}}.complement();
    case 'd':
      return {0, {{'0', '9'}}};
    case 'D':
      return SetPart{0, {{'0', '9'}}}.complement();
    case 'w':
      return {0, {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}};
    case 'W':
      return SetPart{0, {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}}.complement();
    case 'r':
      return SetPart::character('\r');
    case 'n':
      return SetPart::character('\n');
    case 't':
      return SetPart::character('\t');
    case 'v':
      return SetPart::character('\v');
    case 'f':
      return SetPart::character('\f');
    case 'p':
    case 'P': {
      SetPart part = property();
      return c == 'P' ? part.complement() : part;
    }
    default:
      if (c < 0x80 && !std::isalnum(int(c)))
        return SetPart::character(c);
      fail("unsupported escape");
    }
  }

  SetPart property() {
    if (!take('{'))
      fail("expected '{' after \\p");
    std::string name;
    while (!take('}'))
      name += char(next());
    if (name == "Han")
      return {0, std::vector<std::pair<uint32_t, uint32_t>>(std::begin(kHanRanges),
                                                            std::end(kHanRanges))};
    struct Category {
      char letter;
      CharClass charClass;
      const char *subcategories;
    };
    for (Category category :
         {Category{'L', CharClass::Letter, "ultmo"}, Category{'M', CharClass::Mark, "nce"},
          Category{'N', CharClass::Number, "dlo"}, Category{'P', CharClass::Punctuation, "cdseifo"},
          Category{'S', CharClass::Symbol, "mcko"}}) {
      if (name.empty() || name[0] != category.letter || name.size() > 2)
        continue;
      if (name.size() == 1 ||
          std::string_view(category.subcategories).find(name[1]) != std::string_view::npos)
        return {bit(category.charClass), {}};
    }
    fail("unsupported property \\p{" + name + "}");
  }

  void grow(Program &code, Instruction instruction) {
    if (++instructions > kMaxInstructions)
      fail("the pattern compiles to more than " + std::to_string(kMaxInstructions) +
           " instructions");
    code.push_back(instruction);
  }

  void emit(const Node &node, Program &code) {
    switch (node.kind) {
    case Node::Sequence:
      for (const Node &child : node.children)
        emit(child, code);
      return;
    case Node::Alternation: {
      std::vector<size_t> jumps;
      for (size_t i = 0; i + 1 < node.children.size(); ++i) {
        size_t split = code.size();
        grow(code, {Op::Split, uint32_t(split + 1)});
        emit(node.children[i], code);
        jumps.push_back(code.size());
        grow(code, {Op::Jump});
        code[split].y = uint32_t(code.size());
      }
      emit(node.children.back(), code);
      for (size_t jump : jumps)
        code[jump].x = uint32_t(code.size());
      return;
    }
    case Node::Set:
      grow(code, {Op::Set, node.set});
      return;
    case Node::Repeat: {
      for (uint32_t i = 0; i < node.min; ++i)
        emit(node.children[0], code);
      if (node.max == kUnbounded) {
        size_t loop = code.size();
        grow(code, {Op::Split, uint32_t(loop + 1)});
        emit(node.children[0], code);
        grow(code, {Op::Jump, uint32_t(loop)});
        code[loop].y = uint32_t(code.size());
        return;
      }
      // Each optional repeat is tried before giving up on it: x{0,2} is (x(x)?)?.
      std::vector<size_t> splits;
      for (uint32_t i = node.min; i < node.max; ++i) {
        splits.push_back(code.size());
        grow(code, {Op::Split, uint32_t(code.size() + 1)});
        emit(node.children[0], code);
      }
      for (size_t split : splits)
        code[split].y = uint32_t(code.size());
      return;
    }
    case Node::End:
      grow(code, {Op::End});
      return;
    case Node::Look: {
      Program body;
      emit(node.children[0], body);
      body.push_back({Op::Match});
      regex.programs.push_back(std::move(body));
      grow(code, {Op::Look, uint32_t(regex.programs.size() - 1), node.negative ? 1u : 0u});
      return;
    }
    }
  }
};

Result<PreTokenizerRegex> PreTokenizerRegex::compile(std::string_view pattern) {
  try {
    return RegexCompiler(pattern).compile();
  } catch (const PatternError &error) {
    return Error{error.message};
  }
}

// The Pike VM over one piece of a text: threads advance together one code point at a
// time, a thread list per position holds each instruction once (the first thread to
// reach it has the higher priority and wins), and threads started further left rank
// above those started later. Lookaheads only ask whether their program matches at a
// position; that is decided by a depth-first search that remembers, for the piece, which
// (instruction, position) states lead to a match, so every state is settled once.
class RegexMatcher {
public:
  RegexMatcher(const PreTokenizerRegex &regex, const CodePointText &text)
      : regex(regex), text(text), scratch(regex.programs.size()) {
    scratch[0].current.seen.assign(regex.programs[0].size(), 0);
    scratch[0].next.seen.assign(regex.programs[0].size(), 0);
  }

  void setPiece(size_t begin, size_t end) {
    pieceBegin = begin;
    pieceEnd = end;
    ++piece;
  }

  // The pattern's first match starting at or after `from` (only at `from` when
  // anchored; only a non-empty one when notNull).
  bool search(size_t from, bool anchored, bool notNull, size_t &matchBegin, size_t &matchEnd) {
    const PreTokenizerRegex::Program &code = regex.programs[0];
    Scratch &state = scratch[0];
    ThreadList *current = &state.current, *next = &state.next;
    current->reset();
    bool matched = false;
    for (size_t pos = from;; ++pos) {
      if (!matched && (!anchored || pos == from))
        addThread(*current, 0, pos, pos);
      // No thread left: done, unless a later start may still match.
      if (current->threads.empty() && (matched || anchored))
        break;
      next->reset();
      for (const Thread &thread : current->threads) {
        const PreTokenizerRegex::Instruction &instruction = code[thread.pc];
        if (instruction.op == PreTokenizerRegex::Op::Match) {
          if (notNull && thread.start == pos)
            continue;
          matched = true;
          matchBegin = thread.start;
          matchEnd = pos;
          // Threads after this one have lower priority: drop them.
          break;
        }
        if (matchesSet(instruction.x, pos))
          addThread(*next, thread.pc + 1, pos + 1, thread.start);
      }
      std::swap(current, next);
      if (pos >= pieceEnd)
        break;
    }
    return matched;
  }

private:
  struct Thread {
    uint32_t pc;
    size_t start;
  };
  struct ThreadList {
    std::vector<Thread> threads;
    std::vector<uint32_t> seen; // the stamp of the list that holds each instruction
    uint32_t stamp = 0;
    void reset() {
      threads.clear();
      if (++stamp == 0) {
        std::fill(seen.begin(), seen.end(), 0);
        stamp = 1;
      }
    }
  };
  // A lookahead's search: a state being explored, and which of its successors is next.
  struct Frame {
    uint32_t pc;
    size_t pos;
    uint8_t next;
  };
  enum State : uint8_t { Unknown, Exploring, Fails, Matches };
  // The pattern's (program 0's) thread lists and closure stack; each lookahead's search
  // stack and settled states.
  struct Scratch {
    ThreadList current, next;
    std::vector<uint32_t> stack;
    std::vector<Frame> frames;
    std::vector<State> states; // per (position in the piece, instruction)
    uint64_t statesPiece = 0;  // the piece `states` is for
  };

  const PreTokenizerRegex &regex;
  const CodePointText &text;
  std::vector<Scratch> scratch; // one per program
  size_t pieceBegin = 0, pieceEnd = 0;
  uint64_t piece = 0;

  bool matchesSet(uint32_t set, size_t pos) const {
    return pos < pieceEnd && regex.sets[set].contains(text.codePoints[pos], text.classes[pos]);
  }

  bool lookahead(uint32_t program, size_t pos) {
    const PreTokenizerRegex::Program &code = regex.programs[program];
    // Most lookaheads test one character ((?!\S), (?=[\p{L}])).
    if (code.size() == 2 && code[0].op == PreTokenizerRegex::Op::Set)
      return matchesSet(code[0].x, pos);
    Scratch &state = scratch[program];
    if (state.statesPiece != piece) {
      state.states.assign((pieceEnd - pieceBegin + 1) * code.size(), Unknown);
      state.statesPiece = piece;
    }
    auto at = [&](uint32_t pc, size_t p) -> State & {
      return state.states[(p - pieceBegin) * code.size() + pc];
    };
    std::vector<Frame> &frames = state.frames;
    frames.clear();
    // Enters a state: true if it is known to match, else explores it unless settled.
    auto enter = [&](uint32_t pc, size_t p) {
      State &known = at(pc, p);
      if (known == Unknown) {
        known = Exploring;
        frames.push_back({pc, p, 0});
      }
      return known == Matches;
    };
    bool matched = enter(0, pos);
    while (!matched && !frames.empty()) {
      Frame &frame = frames.back();
      const PreTokenizerRegex::Instruction &instruction = code[frame.pc];
      uint32_t pc = frame.pc;
      size_t p = frame.pos;
      bool more = frame.next == 0;
      switch (instruction.op) {
      case PreTokenizerRegex::Op::Match:
        matched = true;
        continue;
      case PreTokenizerRegex::Op::Set:
        more = more && matchesSet(instruction.x, p);
        ++pc, ++p;
        break;
      case PreTokenizerRegex::Op::Split:
        more = frame.next < 2;
        pc = frame.next == 0 ? instruction.x : instruction.y;
        break;
      case PreTokenizerRegex::Op::Jump:
        pc = instruction.x;
        break;
      case PreTokenizerRegex::Op::End:
        more = more && p == pieceEnd;
        ++pc;
        break;
      case PreTokenizerRegex::Op::Look:
        more = more && lookahead(instruction.x, p) != (instruction.y != 0);
        ++pc;
        break;
      }
      if (!more) {
        at(frame.pc, frame.pos) = Fails;
        frames.pop_back();
        continue;
      }
      ++frame.next;
      matched = enter(pc, p);
    }
    // Every state still being explored is on the way to the match.
    for (const Frame &frame : frames)
      at(frame.pc, frame.pos) = Matches;
    return matched;
  }

  // Adds the thread at `pc` and everything it reaches without consuming a code point,
  // depth first and the preferred branch first, which is priority order.
  void addThread(ThreadList &list, uint32_t pc, size_t pos, size_t start) {
    const PreTokenizerRegex::Program &code = regex.programs[0];
    std::vector<uint32_t> &stack = scratch[0].stack;
    stack.assign(1, pc);
    while (!stack.empty()) {
      pc = stack.back();
      stack.pop_back();
      if (list.seen[pc] == list.stamp)
        continue;
      list.seen[pc] = list.stamp;
      const PreTokenizerRegex::Instruction &instruction = code[pc];
      switch (instruction.op) {
      case PreTokenizerRegex::Op::Jump:
        stack.push_back(instruction.x);
        break;
      case PreTokenizerRegex::Op::Split:
        stack.push_back(instruction.y);
        stack.push_back(instruction.x);
        break;
      case PreTokenizerRegex::Op::End:
        if (pos == pieceEnd)
          stack.push_back(pc + 1);
        break;
      case PreTokenizerRegex::Op::Look:
        if (lookahead(instruction.x, pos) != (instruction.y != 0))
          stack.push_back(pc + 1);
        break;
      case PreTokenizerRegex::Op::Set:
      case PreTokenizerRegex::Op::Match:
        list.threads.push_back({pc, start});
        break;
      }
    }
  }
};

void PreTokenizerRegex::split(const CodePointText &text, const std::vector<size_t> &pieceEnds,
                              std::vector<size_t> &ends) const {
  RegexMatcher matcher(*this, text);
  size_t begin = 0;
  for (size_t end : pieceEnds) {
    matcher.setPiece(begin, end);
    size_t last = begin, at = begin;
    bool afterEmpty = false;
    for (;;) {
      size_t matchBegin, matchEnd;
      bool found;
      if (!afterEmpty)
        found = matcher.search(at, false, false, matchBegin, matchEnd);
      else if (at == end)
        break;
      else if (!(found = matcher.search(at, true, true, matchBegin, matchEnd)))
        found = matcher.search(++at, false, false, matchBegin, matchEnd);
      if (!found)
        break;
      if (matchBegin > last)
        ends.push_back(matchBegin);
      if (matchEnd > matchBegin)
        ends.push_back(matchEnd);
      last = at = matchEnd;
      afterEmpty = matchBegin == matchEnd;
    }
    if (end > last)
      ends.push_back(end);
    begin = end;
  }
}

std::vector<std::string_view> splitWords(std::string_view text,
                                         const std::vector<PreTokenizerRegex> &regexes) {
  if (text.empty())
    return {};
  CodePointText codePoints(text);
  std::vector<size_t> ends{codePoints.codePoints.size()}, next;
  for (const PreTokenizerRegex &regex : regexes) {
    next.clear();
    regex.split(codePoints, ends, next);
    ends.swap(next);
  }
  std::vector<std::string_view> words;
  words.reserve(ends.size());
  size_t begin = 0;
  for (size_t end : ends) {
    size_t byteBegin = codePoints.offsets[begin];
    words.push_back(text.substr(byteBegin, codePoints.offsets[end] - byteBegin));
    begin = end;
  }
  return words;
}

} // namespace kiln::llm
