"""A miniature AISHELL-1 laid out as OpenSLR 33 serves it, spoken by espeak-ng's Mandarin voice.

`make_archives(folder)` writes the two archives of https://www.openslr.org/33:
- `data_aishell.tgz`: `data_aishell/wav/<speaker>.tar.gz` (each holding
  `<split>/<speaker>/BAC009<speaker>W<nnnn>.wav`, 16 kHz mono 16-bit) and
  `data_aishell/transcript/aishell_transcript_v0.8.txt` (`<id> <words separated by spaces>`);
- `resource_aishell.tgz`: `resource_aishell/lexicon.txt` and `speaker.info`.
`write_corpus(folder)` writes the same corpus untarred (a copy on disk, for `--corpus-dir`).
Both take a subset of the utterances; `make_archives(..., damaged=speaker)` cuts that speaker's
archive inside data_aishell.tgz short, `write_corpus(..., tarred=[speaker])` leaves that speaker's
archive tarred (as a copy half untarred is).

Speakers follow AISHELL-1's ranges (train S0002-S0723, dev S0724-S0763, test S0764-S0916):
three train speakers, one dev, one test, 69 WAVs of 1.6-6 s (2.7 minutes). What the preparation must handle
is planted as in the real corpus or beyond it: transcripts with full-width Latin letters and
punctuation (normalised), one with an Arabic digit (dropped with its WAV), a WAV without a
transcript and a transcript without a WAV; dev and test hold characters training never saw.

Entry points: `make_archives`, `write_corpus`, `UTTERANCES`.
"""

from __future__ import annotations

import functools
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

from recipe_fixture import espeak

TRANSCRIPT = "data_aishell/transcript/aishell_transcript_v0.8.txt"
# speaker -> (split, espeak-ng voice variant, speed, pitch): each speaker one voice, as in AISHELL
SPEAKERS = {
    "S0002": ("train", "m1", 185, 40),
    "S0003": ("train", "f2", 200, 60),
    "S0004": ("train", "m3", 190, 50),
    "S0724": ("dev", "f4", 195, 55),
    "S0764": ("test", "m2", 190, 45),
}
# Word-segmented sentences, read in AISHELL-1's domains (finance, property, news, daily life).
TRAIN_SENTENCES = [
    "今天 天气 很 好", "我们 一起 去 公园 散步", "房价 上涨 的 速度 放缓", "银行 下调 了 贷款 利率",
    "市场 成交 量 明显 回升", "这 家 公司 发布 了 新 产品", "记者 从 有关 部门 了解 到", "政府 出台 了 新 的 政策",
    "股市 今天 小幅 下跌", "城市 交通 越来越 拥堵", "他 在 北京 工作 多 年", "学生 们 正在 准备 考试",
    "这个 项目 投资 很 大", "消费者 的 信心 有所 恢复", "经济 增长 保持 稳定", "企业 利润 大幅 增加",
    "我 每天 早上 喝 咖啡", "医院 增加 了 床位", "农民 的 收入 提高 了", "我们 要 保护 环境",
    "手机 销量 持续 增长", "足球 比赛 非常 精彩", "她 喜欢 在 家里 看书", "火车 站 人 很 多",
    "新 的 学期 开始 了", "公司 计划 明年 上市", "警方 正在 调查 此 案", "天气 预报 说 明天 下雨",
    "出口 贸易 保持 增长", "中国 队 赢得 了 冠军", "老师 表扬 了 他", "这 条 路 正在 修建",
    "用户 数量 突破 一 亿", "网上 购物 越来越 方便", "我们 明天 早上 出发", "地方 政府 加强 监管",
    "价格 比 去年 下降", "孩子 们 在 公园 玩耍", "工厂 扩大 了 生产", "他 打算 买 一 套 房子",
    "电影 票房 创 新高", "双方 签署 了 合作 协议", "会议 在 上海 举行", "居民 用电 量 增加",
    "这 款 汽车 很 受 欢迎",
    # normalisation: full-width Latin letters (upper- and lower-case) and punctuation
    "我 用 ＡＴＭ 机 取 钱 ， 很 方便 。", "苹果 发布 了 新款 ｉＰｈｏｎｅ ！",
    # an Arabic digit: the sentence cannot be spelled in characters (二 or 两?) and is dropped
    "他 买 了 3 斤 苹果",
]
DEV_SENTENCES = [
    "房价 的 上涨 速度 明显 放缓", "银行 的 贷款 利率 下调", "我们 一起 去 北京 工作", "政府 加强 市场 监管",
    "他 每天 早上 看书", "学生 们 喜欢 足球 比赛", "公司 的 利润 增长 稳定", "消费者 在 网上 购物",
    "天气 很 好 我们 去 散步", "熊猫 在 公园 玩耍",  # 熊猫: never in training
]
TEST_SENTENCES = [
    "市场 的 价格 明显 回升", "企业 扩大 了 投资", "他 在 上海 买 了 房子", "孩子 们 准备 考试",
    "新 的 政策 很 受 欢迎", "我们 明天 去 医院", "手机 的 价格 下降 了", "经济 保持 稳定 增长",
    "老师 正在 看书", "老虎 在 山上 睡觉",  # 虎 山 睡 觉: never in training
]


@dataclass(frozen=True)
class Utterance:
    id: str  # BAC009<speaker>W<nnnn>
    split: str
    speaker: str
    words: str  # the transcript line's text: words separated by spaces
    wav: bool = True  # a WAV file exists
    transcript: bool = True  # a transcript line exists


def _plan() -> list[Utterance]:
    utts = []
    train_speakers = [s for s, v in SPEAKERS.items() if v[0] == "train"]
    for i, words in enumerate(TRAIN_SENTENCES):
        spk = train_speakers[i % len(train_speakers)]
        utts.append(Utterance(f"BAC009{spk}W{121 + i:04d}", "train", spk, words))
    for split, sentences in (("dev", DEV_SENTENCES), ("test", TEST_SENTENCES)):
        spk = next(s for s, v in SPEAKERS.items() if v[0] == split)
        utts += [Utterance(f"BAC009{spk}W{121 + i:04d}", split, spk, w) for i, w in enumerate(sentences)]
    # as in the real corpus: a WAV that the transcript file lacks, and a transcript line without a WAV
    utts.append(Utterance("BAC009S0003W0900", "train", "S0003", "这 句 没有 转写", transcript=False))
    utts.append(Utterance("BAC009S0004W0901", "train", "S0004", "这 句 没有 录音", wav=False))
    return utts


UTTERANCES = _plan()


@functools.lru_cache(maxsize=None)
def speak(utt: Utterance) -> bytes:
    """The WAV file (16 kHz, mono, 16-bit PCM) of espeak-ng reading `utt` in its speaker's voice."""
    _, variant, speed, pitch = SPEAKERS[utt.speaker]
    # cmn-latn-pinyin: the `cmn` voice reads some characters as English words of their pinyin
    return espeak(f"cmn-latn-pinyin+{variant}", speed, pitch, utt.words, "WAV")


def _transcript(utts: list[Utterance]) -> str:
    return "".join(f"{u.id} {u.words}\n" for u in sorted(utts, key=lambda u: u.id) if u.transcript)


def _resources(utts: list[Utterance]) -> dict[str, str]:
    """resource_aishell/: a lexicon of the transcripts' words (phones are placeholders: nothing
    here reads them) and the speakers' genders."""
    words = sorted({w for u in utts for w in u.words.split()})
    return {"resource_aishell/lexicon.txt": "SIL sil\n<SPOKEN_NOISE> sil\n" + "".join(f"{w} sil\n" for w in words),
            "resource_aishell/speaker.info": "".join(f"{s[1:]} {'F' if v[1].startswith('f') else 'M'}\n"
                                                     for s, v in SPEAKERS.items())}


def write_corpus(root: str | Path, utts: list[Utterance] | None = None, tarred: tuple[str, ...] = ()) -> Path:
    """AISHELL-1 as it is once every archive is untarred: `root/data_aishell/{wav,transcript}`
    (wav/<split>/<speaker>/<id>.wav) and `root/resource_aishell`; the speakers `tarred` left as
    `wav/<speaker>.tar.gz`. Returns `root`."""
    root = Path(root)
    utts = UTTERANCES if utts is None else utts
    wav = root / "data_aishell" / "wav"
    for split in ("train", "dev", "test"):
        (wav / split).mkdir(parents=True, exist_ok=True)
    for u in utts:
        if u.wav and u.speaker not in tarred:
            path = wav / u.split / u.speaker / f"{u.id}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(speak(u))
    for spk in tarred:
        (wav / f"{spk}.tar.gz").write_bytes(_speaker_tar(spk, utts))
    (root / TRANSCRIPT).parent.mkdir(parents=True, exist_ok=True)
    (root / TRANSCRIPT).write_text(_transcript(utts), encoding="utf-8")
    for name, text in _resources(utts).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 1_500_000_000, 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mtime, info.mode = tarfile.DIRTYPE, 1_500_000_000, 0o755
    tar.addfile(info)


def _tgz(members: list[tuple[str, bytes | None]]) -> bytes:
    """A tar.gz of (name, data) members; data None: a folder."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members:
            _add_dir(tar, name) if data is None else _add(tar, name, data)
    return buf.getvalue()


def _speaker_tar(spk: str, utts: list[Utterance]) -> bytes:
    """`<speaker>.tar.gz` as data_aishell.tgz holds it: `<split>/<speaker>/<id>.wav`."""
    split = SPEAKERS[spk][0]
    return _tgz([(split, None), (f"{split}/{spk}", None)]
                + [(f"{split}/{spk}/{u.id}.wav", speak(u)) for u in utts if u.speaker == spk and u.wav])


def make_archives(folder: str | Path, utts: list[Utterance] | None = None, damaged: str | None = None
                  ) -> dict[str, Path]:
    """Write `folder/data_aishell.tgz` and `folder/resource_aishell.tgz` as OpenSLR serves them
    (serve `folder` as `<base-url>/33/`), the archive of the speaker `damaged` cut to half its
    bytes inside. Returns {archive name: path}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    utts = UTTERANCES if utts is None else utts
    members: list[tuple[str, bytes | None]] = [("data_aishell", None), ("data_aishell/wav", None)]
    for spk in SPEAKERS:
        speaker_tar = _speaker_tar(spk, utts)
        members.append((f"data_aishell/wav/{spk}.tar.gz", speaker_tar[:len(speaker_tar) // 2] if spk == damaged
                        else speaker_tar))
    members += [("data_aishell/transcript", None), (TRANSCRIPT, _transcript(utts).encode())]
    paths = {"data_aishell.tgz": folder / "data_aishell.tgz", "resource_aishell.tgz": folder / "resource_aishell.tgz"}
    paths["data_aishell.tgz"].write_bytes(_tgz(members))
    paths["resource_aishell.tgz"].write_bytes(_tgz([("resource_aishell", None)] + [
        (name, text.encode()) for name, text in _resources(utts).items()]))
    return paths
