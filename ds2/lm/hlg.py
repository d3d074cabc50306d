"""Decoding graphs as OpenFst FSTs (kaldifst, kaldilm): H (CTC topology), L (lexicon), G, HLG.

    ds2 lm graph data/lang_char data/lm/lm_3gram.arpa

Labels follow the k2/icefall OpenFst route: 0 is epsilon, so token t is label t + 1 on H's
input and output and on L's input (kaldi-decoder's `DecodableCtc` reads column label - 1);
words are labelled by `words.txt` (0 <eps>, then the words, then #0, <s>, </s>). L spells
every word of the LM with the tokenizer's tokens; a space between words is optional and free,
so the graph also parses words the acoustic model ran together. Disambiguation symbols
(#1, #2, ... on spellings that are prefixes of others, #0 on G's back-off arcs) make L o G
determinisable; they are removed from HLG's input at the end.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from pathlib import Path

from ds2.atomic import write_atomic, write_text_atomic
from ds2.lm.ngram import arpa_vocabulary
from ds2.text import Tokenizer

log = logging.getLogger(__name__)


def write_words(path: Path, words: list[str]) -> dict[str, int]:
    """words.txt: <eps> 0, the words, then #0, <s>, </s>; returns word -> id."""
    table = {"<eps>": 0}
    for w in words:
        table.setdefault(w, len(table))
    for w in ("#0", "<s>", "</s>"):
        table[w] = len(table)
    write_text_atomic(path, "".join(f"{w} {i}\n" for w, i in table.items()))
    return table


def read_words(path: str | Path) -> dict[int, str]:
    """id -> word of a words.txt."""
    out = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        word, idx = line.split()
        out[int(idx)] = word
    return out


def spell(words: list[str], tokenizer: Tokenizer) -> tuple[dict[str, tuple[int, ...]], list[str]]:
    """(word -> its token ids, the words left out): a word the tokenizer cannot write (a character
    the tokens lack, e.g. one training never saw) is left out, and counted in a warning."""
    lexicon, skipped = {}, []
    for w in words:
        if tokenizer.can_encode(w):
            ids = tuple(tokenizer.encode(w))
            if ids:
                lexicon[w] = ids
                continue
        skipped.append(w)
    if skipped:
        log.warning("%d of %d LM words cannot be spelled with the tokens and are left out of L (e.g. %s)",
                    len(skipped), len(words), " ".join(skipped[:5]))
    return lexicon, skipped


def add_disambig(lexicon: dict[str, tuple[int, ...]]) -> tuple[dict[str, tuple[int, ...]], int]:
    """Append #k (as -k) to spellings that are a prefix of another or shared; returns max k."""
    counts = Counter(lexicon.values())
    prefixes = {p[:i] for p in lexicon.values() for i in range(1, len(p))}
    used: dict[tuple, int] = defaultdict(int)
    out, max_k = {}, 0
    for word, p in lexicon.items():
        if counts[p] > 1 or p in prefixes:
            used[p] += 1
            max_k = max(max_k, used[p])
            out[word] = p + (-used[p],)
        else:
            out[word] = p
    return out, max_k


# Above this many tokens H takes the compact topology: the full one has vocab_size² arcs (25 M for
# the ~5,000 characters of a Mandarin model, too many to build or compose).
COMPACT_H_ABOVE = 1000
COMPACT_H_REENTRY = 0.01  # cost (negated log-prob) of the compact H's epsilon arc back to the blank state


def build_h(vocab_size: int, blank_id: int = 0, compact: bool | None = None):
    """CTC topology: one state per token; a token's self-loop outputs nothing (repeats merge),
    the blank outputs nothing, every other arc outputs the token it enters.

    `compact` (default: above COMPACT_H_ABOVE tokens) has arcs linear in the vocabulary, like
    k2's "modified" topology: a token's state goes back to the blank's without input (epsilon)
    and every token is entered from there. That path could also read the frames of one token as
    the token repeated; a cost of COMPACT_H_REENTRY on it makes the self-loop win that tie (and
    changes a path from one token straight to another by no more than that)."""
    import kaldifst

    assert blank_id == 0, "the graphs assume the blank is token 0"
    if compact if compact is not None else vocab_size > COMPACT_H_ABOVE:
        return _build_compact_h(vocab_size)
    fst = kaldifst.StdVectorFst()
    for _ in range(vocab_size):
        fst.set_final(state=fst.add_state(), weight=0)
    fst.start = 0
    for i in range(vocab_size):
        for k in range(vocab_size):
            out = 0 if (k == i or k == blank_id) else k + 1
            fst.add_arc(state=i, arc=kaldifst.StdArc(ilabel=k + 1, olabel=out, weight=0, nextstate=k))
    return fst


def _build_compact_h(vocab_size: int):
    import kaldifst

    fst = kaldifst.StdVectorFst()
    for _ in range(vocab_size):
        fst.set_final(state=fst.add_state(), weight=0)
    fst.start = 0
    fst.add_arc(state=0, arc=kaldifst.StdArc(ilabel=1, olabel=0, weight=0, nextstate=0))  # blank
    for k in range(1, vocab_size):
        fst.add_arc(state=0, arc=kaldifst.StdArc(ilabel=k + 1, olabel=k + 1, weight=0, nextstate=k))  # enter k
        fst.add_arc(state=k, arc=kaldifst.StdArc(ilabel=k + 1, olabel=0, weight=0, nextstate=k))  # repeat
        fst.add_arc(state=k, arc=kaldifst.StdArc(ilabel=1, olabel=0, weight=0, nextstate=0))  # blank
        fst.add_arc(state=k, arc=kaldifst.StdArc(ilabel=0, olabel=0, weight=COMPACT_H_REENTRY, nextstate=0))
    return fst


def build_l(lexicon: dict[str, tuple[int, ...]], word_ids: dict[str, int], vocab_size: int,
            space_id: int | None):
    """Lexicon FST: token labels (id + 1, disambig #k as vocab_size + k + 1) in, words out."""
    import kaldifst

    fst = kaldifst.StdVectorFst()
    start = fst.add_state()
    fst.start = start
    fst.set_final(state=start, weight=0)
    if space_id is not None:
        fst.add_arc(state=start, arc=kaldifst.StdArc(ilabel=space_id + 1, olabel=0, weight=0, nextstate=start))
    for word, spelling in lexicon.items():
        labels = [vocab_size + 1 - t if t < 0 else t + 1 for t in spelling]  # -k -> #k
        state = start
        for j, label in enumerate(labels):
            nxt = start if j == len(labels) - 1 else fst.add_state()
            fst.add_arc(state=state, arc=kaldifst.StdArc(
                ilabel=label, olabel=word_ids[word] if j == 0 else 0, weight=0, nextstate=nxt))
            state = nxt
    return fst


def build_g(arpa: str | Path, words_txt: str | Path):
    """G from an ARPA file with kaldilm (#0 on back-off arcs, <s> and </s> as epsilons)."""
    import kaldifst
    import kaldilm

    text = kaldilm.arpa2fst(str(arpa), disambig_symbol="#0", read_symbol_table=str(words_txt),
                            max_arpa_warnings=0)
    return kaldifst.compile(s=text, acceptor=False)


def compose_hlg(h, lexicon_fst, g, vocab_size: int, max_disambig: int, word_disambig0: int,
                determinize: bool = True):
    """det(H o det(min(L o G))), with the disambiguation symbols then erased from its input.
    The compact H is not functional (a repeat reads as one token or two), so H o LG is not
    determinisable: with `determinize` False it stays as composed (a larger, equally exact graph)."""
    import kaldifst

    token_disambig0 = vocab_size + 1  # label of #0 on the token side
    kaldifst.add_self_loops(lexicon_fst, isyms=[token_disambig0], osyms=[word_disambig0])
    kaldifst.arcsort(lexicon_fst, sort_type="olabel")
    kaldifst.arcsort(g, sort_type="ilabel")
    lg = kaldifst.compose(lexicon_fst, g)
    kaldifst.determinize_star(lg)
    kaldifst.minimize_encoded(lg)
    kaldifst.arcsort(lg, sort_type="ilabel")

    h = h.copy()
    first, last = token_disambig0, token_disambig0 + max_disambig
    # H passes L's disambiguation symbols through to HLG's input, so that HLG stays
    # determinisable; they become epsilons after determinisation.
    for state in kaldifst.StateIterator(h):
        for label in range(first, last + 1):
            h.add_arc(state=state, arc=kaldifst.StdArc(ilabel=label, olabel=label, weight=0, nextstate=state))
    kaldifst.arcsort(h, sort_type="olabel")
    hlg = kaldifst.compose(h, lg)
    if determinize:
        kaldifst.determinize_star(hlg)
    _erase_input_labels(hlg, first, last)
    return hlg


def _erase_input_labels(fst, first: int, last: int) -> None:
    """Input labels first..last become epsilon, in place. The arcs are walked with kaldifst's
    bare iterators: its Python wrappers' generators took 10 of the 50 s of a 9 M-arc HLG."""
    from kaldifst.lib._kaldifst import _ArcIteratorStdVectorFst

    for state in range(fst.num_states):
        arcs = _ArcIteratorStdVectorFst(fst, state)
        while not arcs.done:
            arc = arcs.value
            if first <= arc.ilabel <= last:
                arc.ilabel = 0
            arcs.next()


def build_graphs(lang_dir: str | Path, arpa: str | Path, tokenizer: Tokenizer,
                 compact_h: bool | None = None) -> dict[str, Path]:
    """Write words.txt, lexicon.txt, H.fst, L.fst, G.fst and HLG.fst into `lang_dir`, and
    unspelled.txt: the LM's words the tokens cannot spell, left out of L (one a line). ValueError
    (before writing anything) when the ARPA has no word the tokens can spell."""
    lang_dir = Path(lang_dir)
    lang_dir.mkdir(parents=True, exist_ok=True)
    vocab_size = tokenizer.vocab_size
    space_id = tokenizer.symbols.index(" ") if " " in tokenizer.symbols else None

    special = ("<eps>", "#0", "<s>", "</s>")
    vocabulary = [w for w in dict.fromkeys(arpa_vocabulary(arpa)) if w not in special]
    if not vocabulary:
        raise ValueError(f"{arpa} has no words besides <s>, </s> and <unk> (is it an ARPA file of a "
                         f"non-empty text?): a graph of it would decode nothing")
    lexicon, unspelled = spell(vocabulary, tokenizer)
    if not lexicon:
        raise ValueError(f"none of the {len(vocabulary)} words of {arpa} can be spelled with the tokens of "
                         f"{lang_dir} (e.g. {vocabulary[0]!r})")
    word_ids = write_words(lang_dir / "words.txt", vocabulary)
    write_text_atomic(lang_dir / "unspelled.txt", "".join(w + "\n" for w in unspelled))
    write_text_atomic(lang_dir / "lexicon.txt", "".join(
        f"{w} {' '.join(tokenizer.symbols[t] for t in p)}\n" for w, p in lexicon.items()))
    lexicon, max_disambig = add_disambig(lexicon)
    log.info("lexicon: %d words, %d disambiguation symbols", len(lexicon), max_disambig + 1)

    compact_h = vocab_size > COMPACT_H_ABOVE if compact_h is None else compact_h
    h = build_h(vocab_size, tokenizer.blank_id, compact_h)
    lex = build_l(lexicon, word_ids, vocab_size, space_id)
    g = build_g(arpa, lang_dir / "words.txt")
    paths = {name: lang_dir / f"{name}.fst" for name in ("H", "L", "G", "HLG")}
    _write_fst(h, paths["H"])
    _write_fst(lex, paths["L"])
    _write_fst(g, paths["G"])
    hlg = compose_hlg(h, lex, g, vocab_size, max_disambig, word_ids["#0"], determinize=not compact_h)
    _write_fst(hlg, paths["HLG"])
    log.info("HLG: %d states", hlg.num_states)
    return paths


def _write_fst(fst, path: Path):
    write_atomic(path, lambda tmp: fst.write(str(tmp)))
