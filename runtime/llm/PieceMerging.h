// Byte-pair merging over a linked list of text pieces, shared by the BPE tokenizers:
// candidate merges of adjacent pieces wait in a priority queue; the best one is applied
// and the merged piece's new neighbours are proposed, until nothing merges.
#ifndef KILN_RUNTIME_LLM_PIECEMERGING_H
#define KILN_RUNTIME_LLM_PIECEMERGING_H

#include <cstddef>
#include <optional>
#include <queue>
#include <vector>

namespace kiln::llm {

// A piece of the text being merged: a byte range, linked to its neighbours (-1: none).
struct Piece {
  size_t begin, length;
  int previous, next;
};

// Merges adjacent pieces in place. `propose(left, right)` gives the priority of merging
// pieces `left` and `right` (higher first; ties go to the leftmost pair), or nothing
// when they do not merge; `merged(left, right)` is told of each merge before the new
// neighbours are proposed. Merged-away pieces are left with length 0.
template <typename Propose, typename Merged>
void mergePieces(std::vector<Piece> &pieces, Propose propose, Merged merged) {
  struct Merge {
    int left, right;
    double priority;
    size_t length;
  };
  auto later = [](const Merge &a, const Merge &b) {
    return a.priority < b.priority || (a.priority == b.priority && a.left > b.left);
  };
  std::priority_queue<Merge, std::vector<Merge>, decltype(later)> queue(later);
  auto offer = [&](int left, int right) {
    if (left < 0 || right < 0)
      return;
    if (std::optional<double> priority = propose(left, right))
      queue.push({left, right, *priority, pieces[left].length + pieces[right].length});
  };
  for (int i = 1; i < int(pieces.size()); ++i)
    offer(i - 1, i);
  while (!queue.empty()) {
    Merge merge = queue.top();
    queue.pop();
    Piece &left = pieces[merge.left], &right = pieces[merge.right];
    // Stale: one side has merged with something else since (lengths only grow).
    if (left.length == 0 || right.length == 0 || left.length + right.length != merge.length)
      continue;
    merged(merge.left, merge.right);
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (right.next >= 0)
      pieces[right.next].previous = merge.left;
    offer(left.previous, merge.left);
    offer(merge.left, left.next);
  }
}

template <typename Propose> void mergePieces(std::vector<Piece> &pieces, Propose propose) {
  mergePieces(pieces, propose, [](int, int) {});
}

} // namespace kiln::llm

#endif // KILN_RUNTIME_LLM_PIECEMERGING_H
