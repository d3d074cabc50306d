from ds2.score import ErrorRate, error_counts, parse_wer_file, score, write_decode_dir


def test_error_counts_known_alignment():
    # ref: a b c d ; hyp: a x c d e  -> 1 substitution (b->x), 1 insertion (e)
    assert error_counts("a b c d".split(), "a x c d e".split()) == \
        {"ins": 1, "del": 0, "sub": 1, "errors": 2, "ref": 4}
    # a deletion: the hypothesis misses "c"
    assert error_counts("a b c".split(), "a b".split()) == {"ins": 0, "del": 1, "sub": 0, "errors": 1, "ref": 3}


def test_corpus_wer_and_cer():
    refs = {"u1": "the cat sat", "u2": "on a mat"}
    hyps = {"u1": "the cat sat", "u2": "on the mat"}
    wer, cer = score(refs, hyps)
    assert (wer.sub, wer.ins, wer.dels, wer.ref) == (1, 0, 0, 6)
    assert abs(wer.rate - 100 / 6) < 1e-9
    # characters without spaces: "onamat" vs "onthemat": a->t, +h, +e
    assert cer.ref == len("thecatsatonamat") and cer.errors == 3


def test_decode_dir_files_round_trip(tmp_path):
    refs = {"a": "one two three", "b": "four five"}
    hyps = {"a": "one too three", "b": "four five six"}
    wer, cer = write_decode_dir(tmp_path, refs, hyps, header="# test")
    assert wer.line("WER") == "%WER 40.00 [ 2 / 5, 1 ins, 0 del, 1 sub ]"
    parsed = parse_wer_file(tmp_path / "wer.txt")
    assert parsed["WER"] == ErrorRate(ins=1, dels=0, sub=1, ref=5)
    assert parsed["CER"] == cer
    errs = (tmp_path / "errs.txt").read_text()
    assert "a:\tone (two->too) three" in errs
    assert "b:\tfour five (*->six)" in errs
    recogs = (tmp_path / "recogs.txt").read_text().splitlines()
    assert recogs[0] == "a:\tref=['one', 'two', 'three']" and recogs[1] == "a:\thyp=['one', 'too', 'three']"


def test_char_errors_ignore_spaces_and_are_what_score_sums():
    from ds2.score import char_errors

    assert char_errors("the cat", "thecat") == {"ins": 0, "del": 0, "sub": 0, "errors": 0, "ref": 6}
    assert char_errors("a b", " a  c ")["errors"] == 1
    refs, hyps = {"u1": "the cat sat", "u2": "on a mat"}, {"u1": " the  cat sat", "u2": "on the mat"}
    _, cer = score(refs, hyps)
    assert (cer.errors, cer.ref) == tuple(sum(char_errors(refs[u], hyps[u])[k] for u in refs) for k in ("errors", "ref"))
