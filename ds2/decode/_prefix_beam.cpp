// The frame loop of ds2.decode.beam.PrefixBeamSearch in C++: CTC prefix beam search with a
// word LM scored at word boundaries, as Deep Speech 2 decodes (Amodei et al. 2016, 3.8).
//
// It is the same search as the Python reference in tests/prefix_beam_reference.py (read that
// first: the same scores, pruning and recombination in plain dicts and sets; a test checks
// that both give the same n-best and CTC scores), not a line-by-line port: here prefixes are
// nodes of a tree that keep their extensions instead of dict entries keyed by text, the
// unfinished word is a node of a byte trie of the LM words instead of a lookup in a set of word
// prefixes, LM states are numbers, LM answers are cached by (state, word number), and only the
// head of each frame's ranking is sorted. KenLM's query library is compiled into this module
// (setup.py): the search loads the model itself (once per process and file) and asks it
// directly, once per distinct (LM state, word) of a PrefixBeamCore, so a search never calls
// back into Python and runs without the GIL.
//
// Text without word boundaries (Mandarin characters) takes a character LM: with char_lm every
// token is a word of the LM, scored (alpha * ln p + beta) as soon as it is emitted, so the
// LM and the bonus beta count per character, as the paper decodes Mandarin.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include <sys/stat.h>

#include "lm/model.hh"
#include "lm/state.hh"
#include "lm/virtual_interface.hh"

namespace py = pybind11;

namespace {

constexpr double kNegInf = -1e30;  // finite, like NEG_INF of tests/prefix_beam_reference.py
const double kLog10ToLn = std::log(10.0);  // LOG10_TO_LN in ds2.lm.ngram

inline double log_add(double a, double b) {
  if (a < b) std::swap(a, b);
  // exp underflows to 0 below -745 (as in Python): skip libm's slow underflow path
  if (b - a < -746.0) return a;
  return a + std::log1p(std::exp(b - a));
}

// The LM's words as a byte trie in compressed rows: node 0 is the empty word. A prefix's node
// says at once whether its unfinished word may still become an LM word, and which word it is.
class WordTrie {
 public:
  explicit WordTrie(std::vector<std::string> words) {
    std::sort(words.begin(), words.end());
    words.erase(std::unique(words.begin(), words.end()), words.end());
    // In sorted order a word shares its path with earlier words only through last children.
    std::vector<std::vector<std::pair<unsigned char, int>>> children(1);
    word_.assign(1, -1);
    for (size_t w = 0; w < words.size(); ++w) {
      int node = 0;
      for (unsigned char ch : words[w]) {
        auto& kids = children[node];
        if (kids.empty() || kids.back().first != ch) {
          kids.emplace_back(ch, static_cast<int>(children.size()));
          children.emplace_back();
          word_.push_back(-1);
        }
        node = children[node].back().second;
      }
      word_[node] = static_cast<int>(w);
    }
    num_words_ = static_cast<int>(words.size());
    first_.reserve(children.size() + 1);
    for (const auto& kids : children) {
      first_.push_back(static_cast<int>(label_.size()));
      for (const auto& [ch, to] : kids) {
        label_.push_back(ch);
        target_.push_back(to);
      }
    }
    first_.push_back(static_cast<int>(label_.size()));
    root_.fill(-1);
    for (int e = first_[0]; e < first_[1]; ++e) root_[label_[e]] = target_[e];
    words_ = std::move(words);
  }

  // The node reached from `node` by the bytes of `s`; -1 once off the trie (and from -1).
  int walk(int node, const std::string& s) const {
    for (size_t i = 0; i < s.size() && node >= 0; ++i) {
      const unsigned char ch = s[i];
      if (node == 0) {  // the first byte of every word: a table, not a scan of the most children
        node = root_[ch];
        continue;
      }
      int next = -1;
      for (int e = first_[node]; e < first_[node + 1]; ++e)
        if (label_[e] == ch) {
          next = target_[e];
          break;
        }
      node = next;
    }
    return node;
  }

  int word_id(int node) const { return node >= 0 ? word_[node] : -1; }  // -1: not a whole word
  int num_words() const { return num_words_; }
  const std::vector<std::string>& words() const { return words_; }  // by number, sorted

 private:
  std::vector<std::string> words_;
  std::vector<int> first_, target_, word_;
  std::vector<unsigned char> label_;
  std::array<int, 256> root_;  // the root's child by byte (-1: none)
  int num_words_ = 0;
};

// A KenLM model as the search asks it: states are numbers (0: <s>) in the order met, and
// score() gives log10 p(word | state) and the next state's number, as the Python `kenlm`
// module's Model.BaseScore does (the same library: the same answers). The model itself is
// loaded once per process and file, and shared by every search that names it.
class KenLM {
 public:
  using State = lm::ngram::State;

  explicit KenLM(const std::string& path) : model_(load(path)), vocab_(model_->BaseVocabulary()) {
    if (model_->StateSize() != sizeof(State))
      throw std::runtime_error(path + ": not a KenLM n-gram model (its state is not lm::ngram::State)");
    states_.emplace_back();
    model_->BeginSentenceWrite(&states_[0]);
    ids_.emplace(states_[0], 0);
  }

  lm::WordIndex index(const std::string& word) const { return vocab_.Index(StringPiece(word.data(), word.size())); }
  lm::WordIndex end_sentence() const { return vocab_.EndSentence(); }

  std::pair<float, int> score(int state, lm::WordIndex word) {
    State out;
    const float log10 = model_->BaseScore(&states_[state], word, &out);
    const auto [it, added] = ids_.emplace(out, static_cast<int>(states_.size()));
    if (added) states_.push_back(out);
    return {log10, it->second};
  }

 private:
  struct StateHash {
    size_t operator()(const State& s) const { return static_cast<size_t>(lm::ngram::hash_value(s)); }
  };

  // The model of `path`, loaded unless a live search holds it already (the same file: the same
  // path, inode, size and modification time; a model rewritten in place is loaded again).
  static std::shared_ptr<const lm::base::Model> load(const std::string& path) {
    static std::mutex mutex;
    static std::map<std::string, std::weak_ptr<const lm::base::Model>> loaded;
    struct stat st {};
    std::string key = path;
    if (stat(path.c_str(), &st) == 0)
      key += '\0' + std::to_string(st.st_ino) + ':' + std::to_string(st.st_size) + ':' +
             std::to_string(st.st_mtim.tv_sec) + '.' + std::to_string(st.st_mtim.tv_nsec);
    std::lock_guard<std::mutex> lock(mutex);
    if (auto model = loaded[key].lock()) return model;
    lm::ngram::Config config;
    config.messages = nullptr;  // no progress bar: the caller's kenlm.Model has shown one
    std::shared_ptr<const lm::base::Model> model(lm::ngram::LoadVirtual(path.c_str(), config));
    loaded[key] = model;
    return model;
  }

  std::shared_ptr<const lm::base::Model> model_;
  const lm::base::Vocabulary& vocab_;
  std::vector<State> states_;
  std::unordered_map<State, int, StateHash> ids_;
};

struct Options {
  int beam;
  double alpha, beta, token_min_logp, prune_margin, oov_penalty, partial_penalty;
  bool recombine;
};

// A prefix met in the utterance, as a tree node: its last token (whose text it appended to its
// parent's, less the leading space after a word boundary), its unfinished last word, the
// weighted LM score of its complete words and the LM state after them, the penalty of an
// unfinished word that begins no LM word, whether it ends at a word boundary (empty or ending in
// a space), the trie node of its unfinished word (-1: begins no LM word) and that word's hash
// (for recombination). Its full text is kept only when tokens of several characters can spell
// one text in two ways (BPE), to find it by text. Nothing here allocates for short words.
struct Node {
  int parent;
  int last;  // its last token (-1: the empty prefix)
  bool drop_space;  // its text is frags_[last] without the leading space
  bool boundary;
  int state;
  int trie;
  int first_edge;  // its first extension in PrefixBeamCore::edges_ (-1: none yet)
  double lm;
  double partial;  // penalty of its unfinished word if that begins no LM word (else 0)
  size_t word_hash;
  std::string word;
  std::string text;
};

// An extension already made: prefix + token gave `child`; `next` is the prefix's next one.
struct Edge {
  int token, child, next;
};

// LM answers by a 64-bit key (state, word), in one open-addressed table: the search asks it at
// every new prefix that closes a word, where std::unordered_map's buckets cost more than KenLM.
class AnswerCache {
 public:
  struct Answer {
    double ln;  // ln p(word | state), with the OOV penalty
    int next;  // the state after the word
  };

  AnswerCache() { rehash(1024); }

  const Answer* find(uint64_t key) const {
    for (size_t i = slot(key);; i = (i + 1) & mask_) {
      if (keys_[i] == key) return &answers_[i];
      if (keys_[i] == kEmpty) return nullptr;
    }
  }

  const Answer* insert(uint64_t key, Answer answer) {  // the key is not there yet
    if (2 * (size_ + 1) > keys_.size()) rehash(2 * keys_.size());
    size_t i = slot(key);
    while (keys_[i] != kEmpty) i = (i + 1) & mask_;
    keys_[i] = key;
    answers_[i] = answer;
    ++size_;
    return &answers_[i];
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};  // no (state, word) key: states are below 2^31

  size_t slot(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_); }

  void rehash(size_t capacity) {
    std::vector<uint64_t> keys(capacity, kEmpty);
    std::vector<Answer> answers(capacity);
    keys.swap(keys_);
    answers.swap(answers_);
    mask_ = capacity - 1;
    shift_ = 64 - __builtin_ctzll(capacity);
    size_ = 0;
    for (size_t i = 0; i < keys.size(); ++i)
      if (keys[i] != kEmpty) insert(keys[i], answers[i]);
  }

  std::vector<uint64_t> keys_;
  std::vector<Answer> answers_;
  size_t mask_ = 0, size_ = 0;
  int shift_ = 64;
};

struct Beam {
  int node;
  double pb, pnb;
};

class PrefixBeamCore {
 public:
  // char_lm: every token is a word of the LM, scored as it is emitted (text without word
  // boundaries, e.g. Mandarin characters with a character n-gram); else words end at spaces.
  // lm_path: the KenLM model (ARPA or binary), or none; vocabulary: its words (for the trie).
  PrefixBeamCore(std::vector<std::string> fragments, int blank, std::vector<std::string> vocabulary,
                 const std::optional<std::string>& lm_path, bool char_lm)
      : frags_(std::move(fragments)), blank_(blank), trie_(std::move(vocabulary)), char_lm_(char_lm) {
    has_lm_ = lm_path.has_value();
    if (has_lm_) {
      lm_ = std::make_unique<KenLM>(*lm_path);
      lm_index_.reserve(trie_.num_words() + 1);
      for (const auto& w : trie_.words()) lm_index_.push_back(lm_->index(w));
      lm_index_.push_back(lm_->end_sentence());  // number num_words(): </s>
    }
    // Only tokens of several characters (BPE) can spell one text in two ways.
    for (const auto& f : frags_) index_by_text_ = index_by_text_ || code_points(f) > 1;
  }

  // The n best (text with single spaces, log p_ctc, total score), best first.
  std::vector<std::tuple<std::string, double, double>> search(
      py::array_t<float, py::array::c_style | py::array::forcecast> log_probs, int beam, double alpha,
      double beta, double token_min_logp, double prune_margin, double oov_penalty, double partial_penalty, int n,
      bool recombine) {
    if (log_probs.ndim() != 2) throw std::invalid_argument("log_probs must be (frames, tokens)");
    const int T = static_cast<int>(log_probs.shape(0)), V = static_cast<int>(log_probs.shape(1));
    if (V != static_cast<int>(frags_.size()))
      throw std::invalid_argument("log_probs has " + std::to_string(V) + " tokens, the tokenizer " +
                                  std::to_string(frags_.size()));
    opts_ = {beam, alpha, beta, token_min_logp, prune_margin, oov_penalty, partial_penalty, recombine};
    const float* lp = log_probs.data();
    py::gil_scoped_release no_gil;  // nothing below touches Python objects
    nodes_.clear();
    edges_.clear();
    index_.clear();
    nodes_.push_back({-1, -1, false, true, 0, 0, -1, 0.0, 0.0, std::hash<std::string>{}(""), "", ""});
    if (index_by_text_) index_.emplace("", 0);
    std::vector<Beam> beams{{0, 0.0, kNegInf}};
    std::vector<int> cands;

    for (int t = 0; t < T; ++t) {
      const float* row = lp + static_cast<size_t>(t) * V;
      const double lp_blank = row[blank_];
      cands.clear();
      for (int c = 0; c < V; ++c)
        if (c != blank_ && row[c] >= token_min_logp) cands.push_back(c);
      if (cands.empty()) {  // only the blank survives: no new prefix, no pruning needed
        for (auto& b : beams) {
          const int last = nodes_[b.node].last;
          const double pb = log_add(b.pb, b.pnb) + lp_blank;
          b.pnb = last >= 0 ? b.pnb + row[last] : kNegInf;
          b.pb = pb;
        }
        continue;
      }
      touched_.clear();
      // Extensions scoring prune_margin below the best seen so far in this frame are not made:
      // the pruning would drop them (the LM can add at most a word bonus of beta).
      double best = kNegInf;
      const double bonus = std::max(opts_.beta, 0.0);
      for (const auto& b : beams) {
        const Node& node = nodes_[b.node];
        const int last = node.last;
        const double lm = node.lm;
        const double total = log_add(b.pb, b.pnb);
        const int slot = acc(b.node);
        acc_pb_[slot] = log_add(acc_pb_[slot], total + lp_blank);
        best = std::max(best, total + lp_blank + lm + node.partial);
        if (last >= 0)  // the last token repeated without a blank collapses into it
          acc_pnb_[slot] = log_add(acc_pnb_[slot], b.pnb + row[last]);
        for (int c : cands) {
          const double l = row[c];
          // a repeat of the last token only starts a new one after a blank
          const double score = c == last ? b.pb + l : total + l;
          if (score + lm + bonus < best - prune_margin) continue;
          const int child = extend(b.node, c);
          const int s = child == b.node ? slot : acc(child);  // the same text: an extra word boundary
          acc_pnb_[s] = log_add(acc_pnb_[s], score);
          best = std::max(best, score + nodes_[child].lm + nodes_[child].partial);
        }
      }
      prune(beams);
    }

    std::vector<std::tuple<double, std::string, double>> scored;
    for (const auto& b : beams) {
      const double ctc = log_add(b.pb, b.pnb);
      scored.emplace_back(ctc + final_lm(b.node), normalize(text_of(b.node)), ctc);
    }
    std::sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) { return a > b; });
    std::vector<std::tuple<std::string, double, double>> out;
    for (int i = 0; i < static_cast<int>(scored.size()) && i < n; ++i)
      out.emplace_back(std::get<1>(scored[i]), std::get<2>(scored[i]), std::get<0>(scored[i]));
    return out;
  }

 private:
  // The accumulator slot of `node` in this frame (created at -inf).
  int acc(int node) {
    if (static_cast<int>(slot_of_.size()) <= node) slot_of_.resize(nodes_.size() * 2, -1);
    int& s = slot_of_[node];
    if (s < 0 || s >= static_cast<int>(touched_.size()) || touched_[s] != node) {
      s = static_cast<int>(touched_.size());
      touched_.push_back(node);
      if (acc_pb_.size() < touched_.size()) {
        acc_pb_.resize(touched_.size());
        acc_pnb_.resize(touched_.size());
      }
      acc_pb_[s] = kNegInf;
      acc_pnb_[s] = kNegInf;
    }
    return s;
  }

  void prune(std::vector<Beam>& beams) {
    ranked_.clear();
    double top = kNegInf;
    for (size_t s = 0; s < touched_.size(); ++s) {
      const Node& node = nodes_[touched_[s]];
      const double score = log_add(acc_pb_[s], acc_pnb_[s]) + node.lm + node.partial;
      ranked_.push_back({score, static_cast<int>(s)});
      top = std::max(top, score);
    }
    // What scores below the floor is never kept: only the rest is ranked.
    const double cut = top - opts_.prune_margin;
    ranked_.erase(std::remove_if(ranked_.begin(), ranked_.end(), [cut](const auto& r) { return r.first < cut; }),
                  ranked_.end());
    // Only the head is sorted at first; recombination may need more of it.
    const auto better = [](const auto& a, const auto& b) { return a.first > b.first; };
    size_t sorted = std::min(ranked_.size(), static_cast<size_t>(2 * opts_.beam));
    std::nth_element(ranked_.begin(), ranked_.begin() + sorted - 1, ranked_.end(), better);
    std::sort(ranked_.begin(), ranked_.begin() + sorted, better);
    beams.clear();
    kept_hashes_.clear();
    const double floor = ranked_[0].first - opts_.prune_margin;
    for (size_t i = 0; i < ranked_.size() && static_cast<int>(beams.size()) < opts_.beam; ++i) {
      if (i == sorted) {
        std::sort(ranked_.begin() + i, ranked_.end(), better);
        sorted = ranked_.size();
      }
      if (ranked_[i].first < floor) break;
      const int s = ranked_[i].second;
      if (opts_.recombine && recombined(touched_[s], beams)) continue;
      beams.push_back({touched_[s], acc_pb_[s], acc_pnb_[s]});
    }
  }

  // Whether a kept beam has the same LM state, unfinished word and last token as `id`: the same
  // future, so only the better (kept first) of them stays (recombination).
  bool recombined(int id, const std::vector<Beam>& kept) {
    const Node& node = nodes_[id];
    const uint64_t h = node.word_hash ^ (static_cast<uint64_t>(node.state) << 20) ^
                       static_cast<uint64_t>(node.last + 1);
    for (size_t k = 0; k < kept_hashes_.size(); ++k) {
      if (kept_hashes_[k] != h) continue;
      const Node& other = nodes_[kept[k].node];
      if (other.state == node.state && other.last == node.last && other.word == node.word) return true;
    }
    kept_hashes_.push_back(h);
    return false;
  }

  // The prefix `text` + token, created with its LM score if new; a word boundary at the start
  // or after another changes no words, so it returns the parent itself.
  int extend(int parent, int token) {
    for (int e = nodes_[parent].first_edge; e >= 0; e = edges_[e].next)
      if (edges_[e].token == token) return edges_[e].child;
    const int child = make_child(parent, token);
    edges_.push_back({token, child, nodes_[parent].first_edge});
    nodes_[parent].first_edge = static_cast<int>(edges_.size()) - 1;
    return child;
  }

  int make_child(int parent, int token) {
    std::string frag = frags_[token];
    const bool boundary = !frag.empty() && frag[0] == ' ';
    const bool drop_space = boundary && nodes_[parent].boundary;
    if (drop_space) {
      frag.erase(0, 1);
      if (frag.empty()) return parent;
    }
    std::string text;
    if (index_by_text_) {
      text = nodes_[parent].text + frag;
      auto it = index_.find(text);
      if (it != index_.end()) return it->second;
    }
    double lm = nodes_[parent].lm;
    int state = nodes_[parent].state;
    std::string word;
    int trie;
    if (char_lm_) {  // the token is a word of its own: scored now, nothing left unfinished
      if (has_lm_) {
        auto [score, next] = score_word(state, frag, trie_.word_id(trie_.walk(0, frag)));
        lm += score;
        state = next;
      }
      trie = 0;
    } else if (!frag.empty() && frag[0] == ' ') {
      const Node& before = nodes_[parent];
      if (has_lm_ && !before.word.empty()) {  // a word boundary closes the word before it
        auto [score, next] = score_word(state, before.word, trie_.word_id(before.trie));
        lm += score;
        state = next;
      }
      word = last_word(frag);
      trie = trie_.walk(0, word);
    } else {
      word = nodes_[parent].word + frag;
      const size_t space = word.rfind(' ');
      if (space != std::string::npos) {
        word.erase(0, space + 1);
        trie = trie_.walk(0, word);
      } else {
        trie = trie_.walk(nodes_[parent].trie, frag);
      }
    }
    const double partial = partial_score(word, trie);
    const bool at_boundary = frag.back() == ' ';
    const size_t word_hash = std::hash<std::string>{}(word);
    const int id = static_cast<int>(nodes_.size());
    if (index_by_text_) index_.emplace(text, id);
    nodes_.push_back({parent, token, drop_space, at_boundary, state, trie, -1, lm, partial, word_hash,
                      std::move(word), std::move(text)});
    return id;
  }

  static int code_points(const std::string& s) {
    int n = 0;
    for (unsigned char ch : s) n += (ch & 0xC0) != 0x80;  // UTF-8: count the bytes that start one
    return n;
  }

  std::string text_of(int id) const {
    std::vector<int> path;
    for (; id > 0; id = nodes_[id].parent) path.push_back(id);
    std::string text;
    for (auto it = path.rbegin(); it != path.rend(); ++it)
      text.append(frags_[nodes_[*it].last], nodes_[*it].drop_space ? 1 : 0);
    return text;
  }

  static std::string last_word(const std::string& text) {
    const size_t space = text.rfind(' ');
    return space == std::string::npos ? text : text.substr(space + 1);
  }

  // The penalty of an unfinished word that begins no LM word: partial_penalty, times its
  // length / 6 beyond 6 characters (as pyctcdecode); 0 for a word that may still become one.
  double partial_score(const std::string& word, int trie) const {
    if (!has_lm_ || trie_.num_words() == 0 || word.empty() || trie >= 0) return 0.0;
    return opts_.partial_penalty * std::max(1.0, code_points(word) / 6.0);
  }

  // (alpha * ln p(word | state) + beta, next state); the LM is asked once per (state, word).
  // `id` is the word's number (trie_.word_id; num_words() for </s>; -1 for a word the LM does
  // not know): LM words are cached by number, others by KenLM's index (<unk>'s for most).
  std::pair<double, int> score_word(int state, const std::string& word, int id) {
    const bool oov = id < 0;
    const lm::WordIndex index = oov ? lm_->index(word) : lm_index_[id];
    const uint64_t key = (static_cast<uint64_t>(state) << 32) | (oov ? index : static_cast<uint32_t>(id));
    AnswerCache& cache = oov ? oov_cache_ : known_cache_;
    const AnswerCache::Answer* answer = cache.find(key);
    if (answer == nullptr) answer = cache.insert(key, ask_lm(state, index, oov));
    return {opts_.alpha * answer->ln + opts_.beta, answer->next};
  }

  // (ln p(word | state), next state) with the OOV penalty (log10 units) for a word the LM does
  // not know, unweighted, as ReferencePrefixBeamSearch._lm_log_prob in the tests.
  AnswerCache::Answer ask_lm(int state, lm::WordIndex word, bool oov) {
    const auto [log10, next] = lm_->score(state, word);
    double log10_penalized = log10;
    if (oov) log10_penalized += opts_.oov_penalty;
    return {log10_penalized * kLog10ToLn, next};
  }

  // The prefix's LM score with its last word and </s> scored (</s> is not a word: no beta).
  double final_lm(int id) {
    if (!has_lm_) return 0.0;
    const Node& node = nodes_[id];
    double score = node.lm;
    int state = node.state;
    if (!node.word.empty()) {
      auto [s, next] = score_word(state, node.word, trie_.word_id(node.trie));
      score += s;
      state = next;
    }
    return score + score_word(state, "</s>", trie_.num_words()).first - opts_.beta;
  }

  static std::string normalize(const std::string& text) {  // " ".join(text.split())
    std::string out;
    size_t i = 0;
    while (i < text.size()) {
      while (i < text.size() && text[i] == ' ') ++i;
      size_t j = i;
      while (j < text.size() && text[j] != ' ') ++j;
      if (j > i) {
        if (!out.empty()) out.push_back(' ');
        out.append(text, i, j - i);
      }
      i = j;
    }
    return out;
  }

  std::vector<std::string> frags_;
  int blank_;
  bool has_lm_ = false;
  WordTrie trie_;
  std::unique_ptr<KenLM> lm_;
  std::vector<lm::WordIndex> lm_index_;  // KenLM's index of every trie word by number, then </s>
  AnswerCache known_cache_;  // by (state, word number)
  AnswerCache oov_cache_;  // by (state, KenLM index): <unk>'s for words KenLM does not know either
  Options opts_{};
  std::vector<Node> nodes_;
  std::vector<Edge> edges_;
  std::unordered_map<std::string, int> index_;
  std::vector<int> slot_of_, touched_;
  std::vector<double> acc_pb_, acc_pnb_;
  std::vector<std::pair<double, int>> ranked_;
  std::vector<uint64_t> kept_hashes_;  // of the beams kept so far in this frame, in their order
  bool index_by_text_ = false;
  bool char_lm_ = false;
};

}  // namespace

PYBIND11_MODULE(_prefix_beam, m) {
  m.doc() = "C++ frame loop of ds2.decode.beam.PrefixBeamSearch";
  py::class_<PrefixBeamCore>(m, "PrefixBeamCore")
      .def(py::init<std::vector<std::string>, int, std::vector<std::string>, const std::optional<std::string>&,
                    bool>(),
           py::arg("fragments"), py::arg("blank"), py::arg("vocabulary"), py::arg("lm_path"),
           py::arg("char_lm") = false)
      .def("search", &PrefixBeamCore::search, py::arg("log_probs"), py::arg("beam"), py::arg("alpha"),
           py::arg("beta"), py::arg("token_min_logp"), py::arg("prune_margin"), py::arg("oov_penalty"), py::arg("partial_penalty"), py::arg("n"),
           py::arg("recombine") = true);
}
