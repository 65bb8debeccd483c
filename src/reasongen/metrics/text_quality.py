"""Per-text definitions of the text-quality checks (all-key hallucination, repeated phrases, list endings), shared
by their metric modules and by any code that wants to judge one text (selection, the sample report, serving).
Pure Python; garment knowledge (pairing suggestions, product nouns) lives in reasongen.metrics.garments."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from functools import lru_cache

from reasongen.metrics.garments import find_values, garment_mentions, other_garment_spans
from reasongen.metrics.text_checks import mask
from reasongen.text.attributes import Attributes, values

# --- all-key hallucination ------------------------------------------------------------------------------------

# 类型 is the product_type metric's business (it knows 搭配短裤 from 这款短裤).
UNCHECKED_KEYS = frozenset({"类型"})
# Values that are also everyday words, so naming them says nothing about the key: 线条 (the body's lines),
# 复古 / 创意 / 环保 (praise), 形状, 纯色 / 深色 / 浅色 (true of most single colours), 收口 (any gathered edge),
# 常规 (打破常规), 对称 (symmetric cuts everywhere), 波浪 (波浪形: any wavy edge), 花边 (any trim: 木耳花边 is
# 木耳边).
# 风格: praise a writer may add to any product (简约, 青春, 清新, 高贵) and occasions that are everyday words (走在街头,
# 通勤上班, 居家, 运动时); the styles that claim a design (性感, 淑女, 英伦, 工装, 朋克) are checked: invented, a
# reader rejects them (a 性感 jumper, read in the sample report), and the references name one in 8% of texts
# against the model's 30% before.
GENERIC_VALUES: Mapping[str, frozenset[str]] = {
    "风格": frozenset({"简约", "青春", "休闲", "复古", "潮", "高贵", "知性", "清新", "ol", "通勤", "街头", "运动",
                     "居家", "职场"}),
    "图案": frozenset({"线条", "复古", "创意", "环保", "形状", "纯色", "抽象", "花色"}),
    "颜色": frozenset({"纯色", "深色", "浅色"}),
    "衣袖型": frozenset({"收口"}),
    "裙袖型": frozenset({"收口"}),
    "衣长": frozenset({"常规"}),
    "裙衣长": frozenset({"常规"}),
    "衣款式": frozenset({"对称", "波浪"}),
    "裙款式": frozenset({"对称", "波浪"}),
    "裤款式": frozenset({"对称", "波浪"}),
    "裙下摆": frozenset({"花边"}),
}
# Keys that are one slot under a garment-specific name: a collar is a collar on a dress (裙领型) or a top (衣领型).
# Not the 款式 keys: each garment's list of details differs (trousers have no 收腰 value), so a detail outside a
# garment's own list is one the schema could not record, not one the input left out.
KEY_SLOTS: Mapping[str, str] = {
    "衣领型": "领型", "裙领型": "领型", "衣袖长": "袖长", "裙袖长": "袖长", "衣袖型": "袖型", "裙袖型": "袖型",
    "衣长": "衣长", "裙衣长": "衣长", "衣门襟": "门襟", "裙衣门襟": "门襟", "裙腰型": "腰型", "裤腰型": "腰型",
}
# Input values that also license other values: 黑白 is 黑色 and 白色, 波点 are 圆点, 格子 is 格纹.
IMPLIED_VALUES: Mapping[str, tuple[str, ...]] = {"黑白": ("黑色", "白色"), "波点": ("圆点",), "圆点": ("波点",),
                                                "格子": ("格纹",)}
# Values that no training row's attributes hold but a text can claim, checked like the lexicon's own (found by
# reading the model's test texts: 学院风 and 高街 on products of other styles, a 格纹 the input never gave). Styles
# that claim a design, as 英伦 does; not 名媛 or 甜美, which are praise.
CLAIMED_VALUES: Mapping[str, tuple[str, ...]] = {"风格": ("学院", "高街", "田园"), "图案": ("格纹",)}
# Phrases in which a value's characters are no value: 拉高腰线 (raise the waistline) holds 高腰, 一道风景线 风景,
# 日渐变暖 渐变.
NON_VALUE_PHRASES = ("拉高腰线", "提高腰线", "抬高腰线", "风景线", "黑白分明", "纤维素", "日渐变")
# A value names its key in shorter forms too: 九分 (the 九分裤 length), 哈伦 (哈伦裤), 牛仔 (牛仔布, 牛仔裙), 喇叭
# (喇叭袖), 淡蓝 (淡蓝色): the value less its garment-part or colour suffix, when two characters or more stay. Not
# the stems that are everyday praise or words (小公主, 仙女范, 更进一步, 下半身), nor 连衣 / 连体 (连衣裙 names a
# dress, not 连衣裤).
_STEM_SUFFIXES = ("裤", "裙", "布", "袖", "领", "色")
_NO_STEM = frozenset({"仙女", "公主", "一步", "小黑", "连衣", "连体", "拼接", "半身"})
# One-character values are too short to match alone (棉 is in 棉花糖 and 海绵); these forms name them: 纯棉, 棉质.
_ONE_CHARACTER_FORMS = ("纯{}", "全{}", "{}质", "{}料", "{}布")


# Other spellings of a value: the slit 开叉 is as often written 开衩 (56 of the 5,000 references; found by reading
# 衣摆两侧不规则开衩 on a dress whose input has no slit).
_SPELLINGS: Mapping[str, tuple[str, ...]] = {"开叉": ("开衩",)}


def value_forms(value: str) -> tuple[str, ...]:
    """The ways a text names value (lower case): itself when two characters or more, its stem (_STEM_SUFFIXES),
    its other spellings (_SPELLINGS), and for a one-character value the _ONE_CHARACTER_FORMS."""
    value = value.lower()
    if len(value) == 1:
        return tuple(form.format(value) for form in _ONE_CHARACTER_FORMS)
    stem = value[:-1] if value.endswith(_STEM_SUFFIXES) else ""
    own = (value, stem) if len(stem) > 1 and stem not in _NO_STEM else (value,)
    return own + _SPELLINGS.get(value, ())


def checked_keys(value_lexicon: Mapping[str, Sequence[str]]) -> list[str]:
    """Every key of the lexicon whose values are facts (all but UNCHECKED_KEYS), sorted."""
    return sorted(key for key in value_lexicon if key not in UNCHECKED_KEYS)


def _licensed(pairs: Attributes) -> list[str]:
    """The input's values and what they imply (IMPLIED_VALUES), lower case."""
    own = [value.lower() for value in values(pairs)]
    return own + [implied for value in own for implied in IMPLIED_VALUES.get(value, ())]


def _masked(text: str, pairs: Attributes) -> str:
    """text (lower case) with the input's own values and the idioms masked, so that what they contain is not seen:
    the 蓝色 of an input's 深蓝色. Not one-character values: an input's 裙 would hide the 裙 of 大裙摆, its 棉 the
    棉 of 纯棉 (which names it anyway)."""
    own = [value for value in _licensed(pairs) if len(value) > 1]
    return mask(text.lower(), [*own, *NON_VALUE_PHRASES])


def _forms_of(key: str, found: Iterable[str], licensed: Sequence[str]) -> list[tuple[str, str]]:
    """(key, form) for every form of every value in found that names a fact (not an everyday word of the key) and
    that no input value contains (a form inside one is vaguer, not different)."""
    return [(key, form) for value in found
            if value not in GENERIC_VALUES.get(key, ()) and not any(value.lower() in given for given in licensed)
            for form in value_forms(value) if not any(form in given for given in licensed)]


class _Same:
    """A lexicon made hashable by identity, so that the candidates of one input are worked out once per lexicon
    (selection and repair ask for them for every clause of every candidate)."""

    __slots__ = ("mapping",)

    def __init__(self, mapping: Mapping[str, Sequence[str]]):
        self.mapping = mapping

    def __hash__(self) -> int:
        return id(self.mapping)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.mapping is self.mapping


def hallucination_candidates(
    pairs: Attributes, value_lexicon: Mapping[str, Sequence[str]], keys: Iterable[str] | None = None
) -> list[tuple[str, str]]:
    """(input key, value): the known values that would be hallucinations in a text for this input (see
    attribute_hallucinations), lower case. Also what a decoder can ban for the row (modeling.constraints)."""
    return list(_hallucination_candidates(tuple(pairs), _Same(value_lexicon), None if keys is None else tuple(keys)))


@lru_cache(maxsize=64)
def _facts(lexicon: _Same) -> dict[str, list[str]]:
    """The lexicon with the CLAIMED_VALUES added: every value a text can claim under each key."""
    return {key: [*found, *CLAIMED_VALUES.get(key, ())] for key, found in lexicon.mapping.items()}


@lru_cache(maxsize=4096)
def _hallucination_candidates(pairs: Attributes, lexicon: _Same, keys: tuple[str, ...] | None
                              ) -> tuple[tuple[str, str], ...]:
    value_lexicon = _facts(lexicon)
    licensed = _licensed(pairs)
    wanted = set(checked_keys(value_lexicon) if keys is None else keys)
    slots = {KEY_SLOTS.get(key, key): key for key, _ in reversed(pairs) if key in wanted}  # slot -> input's key
    return tuple(dict.fromkeys(
        (slots[KEY_SLOTS.get(key, key)], form)
        for key, found in value_lexicon.items() if KEY_SLOTS.get(key, key) in slots
        for _, form in _forms_of(key, found, licensed)))


@lru_cache(maxsize=4096)
def _other_values(pairs: Attributes, lexicon: _Same) -> tuple[tuple[str, str], ...]:
    """Every known value (in every form) that is no hallucination candidate of this input: matched too, so that it
    can hide a shorter candidate inside it."""
    checked = {value for _, value in _hallucination_candidates(pairs, lexicon, None)}
    return tuple((key, form) for key, found in _facts(lexicon).items() for value in found
                 for form in value_forms(value) if form not in checked)


def attribute_hallucinations(
    text: str,
    pairs: Attributes,
    value_lexicon: Mapping[str, Sequence[str]],
    keys: Iterable[str] | None = None,
) -> list[tuple[str, str]]:
    """(key, value) for each known value (value_lexicon, from the training split) of a key the input lists that
    the text names although the input does not give it. A key's known values are those of its slot (KEY_SLOTS:
    衣领型 and 裙领型 are both collars); keys: the keys checked (default checked_keys: all but 类型),
    reported under the input's key name. A value is named in any of its forms (value_forms: 九分 for 九分裤, 纯棉
    for 棉). Not counted:
    * everyday words (GENERIC_VALUES);
    * a value inside any input value (蓝色 for 深蓝色 is vaguer, not different; 罗纹 for 罗纹袖口) or implied by
      one (IMPLIED_VALUES: 白色 for 黑白);
    * a value inside a pairing suggestion (搭配白色t恤 describes the t恤) or an idiom (NON_VALUE_PHRASES).
    The input's own values (of two characters or more) are masked first, longest first, so the 蓝色 inside an
    input's 深蓝色 is not seen; then every lexicon value is matched longest first, each place once, so that a longer
    value of another key hides a shorter one (polo领 is a collar, not the shirt polo)."""
    candidates = hallucination_candidates(pairs, value_lexicon, keys)
    masked = _masked(text, pairs)
    checked = {value for _, value in candidates}
    others = [pair for pair in _other_values(tuple(pairs), _Same(value_lexicon)) if pair[1] not in checked]
    wanted_pairs = set(candidates)
    found = find_values(masked, candidates + others, other_garment_spans(masked))
    return [pair for pair in found if pair in wanted_pairs]


# Details that no key of the schema records, so no lexicon knows them, yet a text that states one claims a fact the
# shop never gave (read in the sample report: a placket, a mock two-piece, a lining, metal buttons, "breathable",
# a men's product, colour options):
# each phrase -> what in the input's keys or values licenses it. A fabric's feel needs a 材质, a length shown off
# (露出脚踝) a length key, a bared collarbone a neckline or a bare shoulder, a pocket or a zip its own value.
UNGIVEN_DETAILS: Mapping[str, tuple[str, ...]] = {
    **dict.fromkeys(("门襟",), ("门襟", "开襟", "排扣")),
    **dict.fromkeys(("假两件", "两件套"), ("两件",)),
    **dict.fromkeys(("内衬", "里衬", "衬里"), ("内衬", "里衬")),
    **dict.fromkeys(("磨白", "做旧"), ("磨白", "做旧")),  # a wash: 7 of 514 model texts named it, 1 reference
    **dict.fromkeys(("金属",), ("金属",)),  # 金属纽扣 too: an input's 纽扣 is masked, so the phrase is the metal
    **dict.fromkeys(("口袋", "贴袋", "插袋", "斜插袋"), ("袋", "兜")),
    **dict.fromkeys(("拉链",), ("拉链",)),
    **dict.fromkeys(("亲肤", "亲和肌肤", "透气", "吸湿", "排汗", "抗皱", "耐磨", "不起球", "手感", "弹力", "弹性"),
                    ("材质",)),
    **dict.fromkeys(("脚踝",), ("裤长", "裙长", "衣长", "脚口")),
    **dict.fromkeys(("锁骨",), ("领", "肩", "吊带", "抹胸")),
    # no key records who wears it, and most products are women's: a men's product is another product (男友风, the
    # boyfriend cut, is a women's style and stays)
    **dict.fromkeys(("男士", "男性", "男生", "男人", "男孩", "男童", "男款", "男装", "型男", "潮男"), ("男",)),
    **dict.fromkeys(("色可选", "色可供"), ("可选",)),  # colour options: the input describes one product
    **dict.fromkeys(("孩童", "儿童", "童装"), ("童",)),  # a child's garment is another product too
    # a print's or embroidery's motif: an input's 印花 or 刺绣 does not say what it shows (found by reading the
    # model's texts: 胸前的亮片猫咪 on a shirt whose input has 亮片 only); 花朵 and 小花 are left out, the
    # references say them of 刺绣, 蕾丝 and 碎花 alike (103 and 23 of the 5,000)
    **dict.fromkeys(("猫咪", "小猫", "兔子", "小兔", "狗狗", "小狗", "熊猫", "小鹿", "独角兽", "恐龙", "老虎", "虎头",
                     "狐狸", "火烈鸟", "米老鼠", "笑脸"), ("卡通", "动物")),
    **dict.fromkeys(("星星", "五角星", "月亮", "樱桃", "草莓", "菠萝", "柠檬", "爱心"),
                    ("卡通", "创意", "心形", "几何")),
    **dict.fromkeys(("玫瑰", "雏菊", "向日葵"), ("植物", "大花")),
    # a fabric or weave no 材质 value names (梭织, 提花 jacquard, 灯芯绒 corduroy, leather, wool cloth, down) or a
    # fibre more exact than the input's (聚酯 is 涤纶; 真丝 is 蚕丝)
    **{phrase: (phrase,) for phrase in ("梭织", "提花", "灯芯绒", "麂皮", "皮革", "真皮", "皮质", "毛呢", "天鹅绒",
                                        "羽绒", "加绒")},
    **dict.fromkeys(("聚酯",), ("涤纶", "纤维")),
    **dict.fromkeys(("氨纶", "锦纶"), ("混纺", "纤维")),
    **dict.fromkeys(("真丝",), ("丝",)),
    **dict.fromkeys(("睡衣",), ("睡",)),  # a pyjama cut sells another garment
    # 2026-12-08's reading: a wash (洗水效果的浅蓝色), a hard-wearing, crease-free fabric (坚固耐用，不易皱), a flat
    # collar (平领: no lexicon value) and a woven tape (后领主题小织带) that the input never gave
    **dict.fromkeys(("洗水",), ("水洗", "洗水")),
    **dict.fromkeys(("耐用", "不易皱"), ("材质",)),
    **dict.fromkeys(("平领",), ("平领",)),
    **dict.fromkeys(("织带",), ("织带", "飘带")),
}
UNGIVEN_KEY = "细节"  # the key those phrases are reported under


def unlisted_candidates(pairs: Attributes, value_lexicon: Mapping[str, Sequence[str]]) -> list[tuple[str, str]]:
    """(key, form): every form (value_forms) of the known values of every factual key whose slot the input does not
    list at all, lower case (everyday-word values left out, as for attribute_hallucinations), then the
    UNGIVEN_DETAILS phrases that nothing in the input licenses, under UNGIVEN_KEY. Naming one states a detail the
    shop never gave: a collar on a 西装 with no 领型, cotton with no 材质, a placket, "breathable" with no fabric.
    Also a decoder's ban list."""
    return list(_unlisted_candidates(tuple(pairs), _Same(value_lexicon)))


@lru_cache(maxsize=4096)
def _unlisted_candidates(pairs: Attributes, lexicon: _Same) -> tuple[tuple[str, str], ...]:
    value_lexicon = _facts(lexicon)
    listed = {KEY_SLOTS.get(key, key) for key, _ in pairs}
    licensed = _licensed(pairs)
    found = [pair for key in checked_keys(value_lexicon) if KEY_SLOTS.get(key, key) not in listed
             for pair in _forms_of(key, value_lexicon[key], licensed)]
    named = {form for _, form in found}  # a phrase the lexicon knows (口袋) keeps its own key
    given = [word for pair in pairs for word in pair]
    found += [(UNGIVEN_KEY, phrase) for phrase, licences in UNGIVEN_DETAILS.items()
              if phrase not in named and not any(licence in word for licence in licences for word in given)]
    return tuple(dict.fromkeys(found))


def unlisted_details(text: str, pairs: Attributes, value_lexicon: Mapping[str, Sequence[str]]) -> list[tuple[str, str]]:
    """(key, value) for each detail the text states under a key the input does not list (unlisted_candidates),
    matched as attribute_hallucinations matches: input values and idioms masked, pairing suggestions skipped."""
    masked = _masked(text, pairs)
    return find_values(masked, unlisted_candidates(pairs, value_lexicon), other_garment_spans(masked))


# --- repeated phrases -----------------------------------------------------------------------------------------

# Clauses end at any punctuation, the enumeration comma included: 穿着舒适，穿着舒适 and 舒适、舒适 both repeat.
_CLAUSE_SPLIT = re.compile(r"[，。！？；、,.!?;:：~～…\s]+")
# Dropped before comparing: punctuation, spaces and the data's placeholders for unknown characters and brands.
_NOT_TEXT = re.compile(r"<unk>|<brand>|brand|[^\w]|_")


def normalise(clause: str) -> str:
    """A clause as compared: lower case, no punctuation, spaces or placeholders (<UNK>, BRAND)."""
    return _NOT_TEXT.sub("", clause.lower())


def split_clauses(text: str) -> list[str]:
    """text cut at every punctuation mark, each piece normalised, empty pieces dropped."""
    return [clause for clause in map(normalise, _CLAUSE_SPLIT.split(text)) if clause]


# A unit of 2-4 Chinese characters said twice in a row, or again right after 又 / 也 / 还 / 更 (镂空镂空, 显瘦又显瘦);
# 一丝一丝 and 一层又一层 are how Chinese reduplicates a measure word, so units starting with 一 are fine. Not after a
# comma: 采用优质面料，面料柔软 chains a topic, as good copy does.
_DOUBLED = re.compile(r"((?!一)[\u4e00-\u9fff]{2,4})[又也还更]?\1")
# A two-character word said over and over: 4 times (舒适 four times in three sentences reads as a loop), or once per
# 25 characters in a longer text (宽松 six times in 93 characters). 设计 ("design", the data's filler noun) and garment
# nouns are left out, and a word of the input's values counts from 1.5 times that: references use them that often
# (with both, 1.91% of the training references and 1.75% of the test ones break the whole repetition rule).
_OVERUSE_MIN = 4
_OVERUSE_PER_CHARS = 25
_GIVEN_FACTOR = 1.5  # a word of the input's values may recur this much more often (宽松 on a 宽松 product)
_FILLER = "设计"
_TWO_HAN = re.compile(r"[\u4e00-\u9fff]{2}")
_PARTICLE = "的"  # 松的 of 宽松的 is no word
# A two-character word as its own modifier: 显瘦的显瘦, 造型的造型 (3 of the 5,000 references, all slips).
_OF_ITSELF = re.compile(r"([\u4e00-\u9fff]{2})的\1")


def _ngram_counts(text: str, n: int, skip: Sequence[bool] = ()) -> Counter[str]:
    """Character n-grams of text, leaving out those that touch a skipped position."""
    return Counter(text[i : i + n] for i in range(len(text) - n + 1) if not any(skip[i : i + n]))


def repeated_phrases(text: str, n: int = 4, min_count: int = 3, min_clause: int = 3,
                     given: Collection[str] = ()) -> list[str]:
    """What text repeats, each once (empty: nothing):
    * a clause (min_clause characters or more, normalised) said twice or more: 穿着舒适，穿着舒适;
    * a character n-gram (punctuation removed, so it may span clauses) min_count times or more, unless it
      overlaps a garment noun: a product is named by its noun several times in good prose (本款连衣裙 … 本款连衣裙);
    * a character (n-1)-gram min_count times or more inside one clause: 牛仔裤是牛仔裤的牛仔裤;
    * a unit of 2-4 characters twice in a row, or again after 又 or a comma (_DOUBLED): 镂空镂空装饰, 显瘦又显瘦;
    * a two-character word as its own modifier (_OF_ITSELF): 显瘦的显瘦;
    * a two-character word said over and over (overused_words): 舒适 four times in 90 characters; a word of the
      input's values (`given`) a little more often: a text about a 条纹 shirt says 条纹 a lot."""
    clauses = [clause for clause in split_clauses(text) if len(clause) >= min_clause]
    found = [clause for clause, count in Counter(clauses).items() if count > 1]
    flat = normalise(text)
    nouns = [False] * len(flat)
    for mention in garment_mentions(flat):
        nouns[mention.start : mention.end] = [True] * (mention.end - mention.start)
    found += [gram for gram, count in _ngram_counts(flat, n, nouns).items() if count >= min_count]
    for clause in clauses:
        found += [gram for gram, count in _ngram_counts(clause, n - 1).items() if count >= min_count]
    found += [match.group(1) for match in _DOUBLED.finditer(text.lower())]
    found += [match.group(0) for match in _OF_ITSELF.finditer(text.lower())]
    found += overused_words(flat, nouns, given)
    return list(dict.fromkeys(found))


def overused_words(flat: str, skip: Sequence[bool], given: Collection[str] = ()) -> list[str]:
    """Two-character words of a normalised text said max(4, len / 25) times or more (1.5 times that for a word
    inside a given value; not 设计, not where skip)."""
    masked = [hidden or flat[i : i + 2] == _FILLER or (i > 0 and flat[i - 1 : i + 1] == _FILLER)
              for i, hidden in enumerate(skip)]
    counts = _ngram_counts(flat, 2, masked)
    least = max(_OVERUSE_MIN, len(flat) / _OVERUSE_PER_CHARS)
    return [word for word, count in counts.items()
            if _TWO_HAN.fullmatch(word) and _PARTICLE not in word
            and count >= (_GIVEN_FACTOR * least if any(word in value for value in given) else least)]


# --- list endings ---------------------------------------------------------------------------------------------

# What a repair step or a template glues after a value: 显瘦版型, 碎花元素, 圆领设计, 黄色配色, 韩版风格.
LIST_SUFFIXES = ("风格", "元素", "设计", "版型", "图案", "材质", "面料", "颜色", "配色", "款式", "领", "袖", "风")
# Bare clauses are separated by a comma or a full stop; 、 is how prose enumerates, so it does not end one.
_LIST_CLAUSE_SPLIT = re.compile(r"[，。！？；,.!?;~～]+")


def bare_attribute_clause(clause: str, known_values: Collection[str]) -> bool:
    """Whether a clause is only an attribute value (one of known_values), optionally followed by one of
    LIST_SUFFIXES or preceded by 采用 with 面料 after (the template's material phrase): no verb, no predicate."""
    clause = normalise(clause)
    if clause.startswith("采用") and clause.endswith("面料"):
        clause = clause[2:-2]
    else:
        for suffix in LIST_SUFFIXES:
            if clause.endswith(suffix) and clause[: -len(suffix)] in known_values:
                return True
    return clause in known_values


def list_endings(text: str, known_values: Collection[str], min_run: int = 3) -> list[list[str]]:
    """Runs of min_run or more consecutive bare attribute clauses (bare_attribute_clause) in text, each run as
    its clauses: 显瘦版型，性感风格，蝴蝶结元素. known_values: lower-case attribute values, typically every value
    of the training lexicon plus the input's own. Empty: the text reads as prose."""
    runs: list[list[str]] = []
    current: list[str] = []
    for clause in _LIST_CLAUSE_SPLIT.split(text.lower()) + [""]:
        if clause.strip() and bare_attribute_clause(clause, known_values):
            current.append(clause.strip())
            continue
        if len(current) >= min_run:
            runs.append(current)
        current = []
    return runs


def known_values(value_lexicon: Mapping[str, Sequence[str]], pairs: Attributes = ()) -> frozenset[str]:
    """Every lexicon value and the input's own, lower case: what list_endings counts as an attribute value."""
    return frozenset(v.lower() for found in value_lexicon.values() for v in found) | {
        v.lower() for v in values(pairs)}


# --- cut-off clauses ------------------------------------------------------------------------------------------

# A clause that ends on a word which needs what follows it was cut off: 肩带各有两个纽扣和， / 纯净的黄色对应的是。
# (a joined clause lost its other half). 的是 / 同时 / 而且 / 并且 are fine before a comma (不同的是，,
# 穿着舒适的同时，), cut off before a full stop (穿着舒适的同时。). 柔和 / 温和 / 暖和 / 亲和 / 违和 are adjectives,
# 当仁不让 an idiom.
_CUT_BEFORE_ANY = re.compile(r"((?<![柔温暖平随缓祥谐融总调亲违])和|(?<![参给])与|以及|(?<![即])将|(?<![天大])使得|"
                             r"(?<!不)让|把|被|对于|不仅|能够的?|一下子就)[，。！？；,.!?;]")
_CUT_BEFORE_STOP = re.compile(r"(的是|同时|而且|并且|但是|因为|所以)[。！？.!?]")
# Quotation marks with nothing inside: the data set removed a name there (西装总给人一种“”的感觉).
_EMPTY_QUOTES = re.compile(r"(“\s*”|\"\s*\"|「\s*」)")


# A sentence that opens on a predicate lost its subject: 呈现出简洁大方的气息。 / 。烘托纤细的腰身 (read in the
# sample report: retrieve-and-edit dropped the clause before it). Each of these opens a sentence in 0-0.2% of the
# 5,000 references and 3 to 20 times as often in the chosen test texts (18% of those texts, 1.8% of references);
# 彰显, 让, 使 and the connectives (同时, 而且) open references' sentences as often and are left out.
_PREDICATES = (r"凸显|呈现|烘托|展现|打造|尽显|营造|增添|为衣身|为裙身|为整体|令|使得|更显|更加|显得|能够|可以|"
               r"修饰|勾勒|带来|散发|提升|拉长|增加|透出|给人")
_HEADLESS = re.compile(rf"(?:^|[。！？!?])\s*({_PREDICATES})")
# What a clause opens with when it leans on the clause before it: one of those predicates, or a connective.
_LEANING = re.compile(rf"\s*(?:{_PREDICATES}|也|又|还|而且|并且|同时|让|使|更|并|但|却|因此|所以|从而)")


def leans_on_before(clause: str) -> bool:
    """Whether clause opens on a word that needs the clause before it (也带来了…, 让整款上衣…, 凸显…): without
    that clause it has no subject (headless_sentences counts the predicates among them that open a sentence)."""
    return bool(_LEANING.match(clause.lower()))


def cut_off_ends(text: str) -> list[str]:
    """The clauses of text that end on a word needing a continuation (_CUT_BEFORE_ANY, or _CUT_BEFORE_STOP before a
    full stop), each with that ending word, and empty quotation marks (a hole where a name was). A clause alone
    can be checked: what it ends on does not depend on what came before (repair drops such clauses)."""
    lowered = text.lower()
    return [match.group(1) for pattern in (_CUT_BEFORE_ANY, _CUT_BEFORE_STOP, _EMPTY_QUOTES)
            for match in pattern.finditer(lowered)]


def headless_sentences(text: str) -> list[str]:
    """The predicates (_HEADLESS) that open a sentence of text, so that it has no subject, each as 。 + predicate."""
    return ["。" + match.group(1) for match in _HEADLESS.finditer(text.lower())]


# The first half of a correlative pair with no second half in its own clause or the next two: 深v领既能凸显性感的锁骨，
# 前身撞色英文字母点缀。 and 不但采用了单排扣的装饰，对撞的色彩… (read in the sample report: an edit dropped the clause
# with 又 / 而且); 不仅修饰脸部线条，为裙身带来了浓郁的休闲韵味，边缘的英文字母，对于身材的包容性也强 (joined clauses of
# several texts: the 也 three clauses on answers nothing). The references: 0.88% with no second half in the sentence,
# 0.90% with none within two clauses, 1.34% within one. 既然, 既视感, 既定 are other words.
_CORRELATIVES = ((re.compile(r"既(?![然视定往有是])"), re.compile(r"又|也|还|更|同时")),
                 (re.compile(r"不但|不仅"), re.compile(r"而且|还|也|更|同时|又|亦")))
_SENTENCE_END = re.compile(r"[。！？!?；;]")
_CLAUSE_COMMA = re.compile(r"[，,]")
_CORRELATIVE_REACH = 2  # clauses after the first half's own


def unpaired_correlatives(text: str) -> list[str]:
    """The first halves (既, 不但, 不仅) of correlative pairs with no second half in the rest of their clause or the
    next two of their sentence, each as word + …"""
    found = []
    for sentence in _SENTENCE_END.split(text.lower()):
        for first, second in _CORRELATIVES:
            match = first.search(sentence)
            if not match:
                continue
            reach = _CLAUSE_COMMA.split(sentence[match.end():])[: _CORRELATIVE_REACH + 1]
            if not any(second.search(clause) for clause in reach):
                found.append(match.group(0) + "…")
    return found


def cut_off_clauses(text: str) -> list[str]:
    """What is cut off in text: cut_off_ends (a clause ends on a word needing a continuation, or an empty
    quotation), headless_sentences (a sentence opens on a predicate) and unpaired_correlatives (既 with no 又);
    empty: every clause is complete as far as these words tell."""
    return cut_off_ends(text) + headless_sentences(text) + unpaired_correlatives(text)
