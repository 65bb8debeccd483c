"""What garment a text says it is selling: garment nouns, the mentions that refer to the product itself (not a
pairing suggestion such as 搭配短裤), and whether they fit the input's attributes. Pure Python, no model.

Used by the product_type metric module (product_type_mismatches, incompatible_parts) and by the all-key
hallucination check (other_garment_spans: values inside a pairing suggestion describe the other garment)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from reasongen.text.attributes import Attributes

TYPE_KEY = "类型"
TOP, SKIRT, TROUSERS = "上衣", "裙", "裤"
ANY = ""  # the category of a noun that fits any product (衣服)
LENGTH, PIECE, KIND = "length", "piece", "kind"  # what a specific noun says about the garment


@dataclass(frozen=True)
class Garment:
    """A garment noun: its category (a 类型 value), what it specifies (facet), the input terms that license it
    (empty: a generic noun, any product of the category), and input terms it contradicts."""

    category: str
    facet: str = KIND
    support: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()


def _nouns(category: str, facet: str, spec: str) -> dict[str, Garment]:
    """Parse `noun:support/support!conflict/conflict noun2 ...`; a noun without `:` is licensed by its own name
    only, `noun:` with no support is a generic noun of the category (`noun:!x` a generic one that contradicts x)."""
    table = {}
    for item in spec.split():
        noun, sep, rest = item.partition(":")
        supported, _, conflicting = rest.partition("!")
        support = tuple(filter(None, supported.split("/"))) if sep else (noun,)
        table[noun] = Garment(category, facet, support, tuple(filter(None, conflicting.split("/"))))
    return table


# Support terms are matched inside the input's values (lower case): 牛仔 licenses 牛仔裤 through 材质#牛仔布,
# 阔腿 licenses 阔腿裤 through 裤型#阔腿裤, and a broader noun is licensed by its narrower ones (外套 by 风衣).
# Generic on purpose: kinds the attribute schema cannot express (大衣, 打底裤, 锥形裤: no training value names
# them), kinds by style rather than fact (运动裤, 西装裤, 公主裙) and by straps (吊带裙), each ruled out only by
# the input values it contradicts. Material or print words before a generic noun (蕾丝裙, 印花t恤) are the
# attribute check's business, not this table's.
_NOT_COAT = "!衬衫/t恤/polo/卫衣/打底衫/雪纺衫/吊带/套头衫"
_SLEEVED = "!长袖/短袖/分袖/喇叭袖/灯笼袖/泡泡袖/荷叶袖/蝙蝠袖/公主袖/插肩袖/衬衫袖/落肩袖"
_SHORT = "/短裤/五分裤"  # trouser kinds below are long trousers: 阔腿裤 is not a name for shorts
_NOT_TAPERED = f"!阔腿/直筒/喇叭/微喇/垮裤{_SHORT}"
GARMENTS: dict[str, Garment] = {
    **_nouns(SKIRT, LENGTH, "长裙 短裙:短裙/超短裙 中长裙 中裙:中裙/中长裙 超短裙 迷你裙:超短裙/短裙"),
    **_nouns(SKIRT, PIECE, """连衣裙:连衣裙/衬衫裙 连身裙:连衣裙/衬衫裙 半身裙:半身裙/包臀裙/一步裙/铅笔裙
        半裙:半身裙/包臀裙/一步裙/铅笔裙"""),
    **_nouns(SKIRT, KIND, f"""裙子: 裙装: a字裙:a字 牛仔裙:牛仔 百褶裙:百褶 背带裙:背带 直筒裙:直筒
        鱼尾裙:鱼尾 包臀裙:包臀/一步裙 网纱裙:网纱 纱裙: 蓬蓬裙:蓬蓬 小黑裙 蛋糕裙:蛋糕 衬衫裙:衬衫 衬衣裙:衬衫
        抹胸裙:抹胸 公主裙: 伞裙:伞裙/大裙摆 大摆裙:大裙摆 一步裙:一步裙/包臀 花苞裙:花苞 仙女裙: 铅笔裙:铅笔
        西装裙:西装 灯笼裙:灯笼 吊带裙:{_SLEEVED} 背心裙:{_SLEEVED} 毛衣裙:毛衣/针织 针织裙:针织 卫衣裙:卫衣
        睡裙:"""),
    **_nouns(TROUSERS, LENGTH, """长裤:长裤/九分/八分 短裤:短裤/五分裤 热裤:短裤/五分裤 九分裤:九分 七分裤:七分
        五分裤:五分/短裤 八分裤:八分"""),
    **_nouns(TROUSERS, PIECE, "连衣裤:连衣裤/连体裤 连体裤:连衣裤/连体裤 连身裤:连衣裤/连体裤 连体衣:连衣裤/连体裤"),
    **_nouns(TROUSERS, KIND, f"""裤子: 裤装: 裙裤: 休闲裤: 运动裤: 卫裤: 西装裤: 西裤: 工装裤: 打底裤:
        阔腿裤:阔腿!{_SHORT} 直筒裤:直筒!{_SHORT} 哈伦裤:哈伦!{_SHORT} 背带裤:背带 铅笔裤:铅笔/小脚!{_SHORT}
        垮裤!{_SHORT} 灯笼裤:灯笼 牛仔裤:牛仔 小脚裤:小脚/铅笔!{_SHORT} 喇叭裤:喇叭/微喇!{_SHORT}
        微喇裤:微喇/喇叭!{_SHORT} 束脚裤:!阔腿/喇叭/微喇/垮裤{_SHORT} 锥形裤:{_NOT_TAPERED} 萝卜裤:{_NOT_TAPERED}
        烟管裤:!阔腿/喇叭/微喇/哈伦/垮裤{_SHORT} 紧身裤:!阔腿/直筒/喇叭/微喇/哈伦/垮裤/宽松"""),
    **_nouns(TOP, KIND, f"""上衣: 上装: 衬衫 衬衣:衬衫 t恤 体恤:t恤 polo衫:polo polo 卫衣
        外套:外套/风衣/西装/棒球服/冲锋衣/开衫/马甲 风衣 针织衫:针织/毛衣/毛衫/开衫 毛衣:毛衣/毛衫/针织/羊毛/羊绒
        毛衫:毛衣/毛衫/针织/羊毛/羊绒 线衫:针织/毛衣/毛衫 开衫 西装 西服:西装 雪纺衫:雪纺 棒球服:棒球 马甲
        打底衫:打底 套头衫:套头 冲锋衣:冲锋 夹克:{_NOT_COAT} 大衣:{_NOT_COAT} 羽绒服:{_NOT_COAT}
        棉服:{_NOT_COAT} 皮衣:{_NOT_COAT} 背心:背心/吊带/马甲/无袖 吊带衫:吊带 娃娃衫: 帽衫:连帽/卫衣 睡衣:
        防晒衣:"""),
    "衣服": Garment(ANY),
}
# 裙裤 (culottes) is a skirt to the eye and trousers by cut: either category fits.
_CATEGORIES = {"裙裤": (SKIRT, TROUSERS), SKIRT: (SKIRT,), TROUSERS: (TROUSERS,)}
# Facets that an input silent on them still decides: 类型#裤 alone is two-legged trousers (each of the 43 jumpsuits
# of the 5,000 training rows has 连体裤 or 连衣裤 among its values), while 类型#裙 alone is a dress or a skirt.
_NAMED_ONLY_BY_INPUT = frozenset({(TROUSERS, PIECE)})
# Keys whose values name the garment (裤型#阔腿裤, 衣样式#套头衫, 裙长#连衣裙).
NARROWING_KEYS = ("衣样式", "裤型", "裙型", "裤长", "裙长")
# Generic names of a category: in a text they are as often a pairing (任何上衣), a part (a dress's 上衣) or a
# two-way garment as the product, so they count only when the text points at the product (这款裤子). 背心 is
# also the middle of the back (背心系带) and the top of a two-piece dress.
WEAK_NOUNS = frozenset({"上衣", "上装", "裙子", "裙装", "裤子", "裤装", "衣服", "背心", SKIRT, TROUSERS})

# A bare 裙/裤 is the garment unless it starts a part word (裙摆, 裤腿); 衣 and 衫 alone are too ambiguous.
_BARE = {SKIRT: re.compile(r"裙(?![摆身长型腰头边角撑底褶尾衩裤装子])"),
         TROUSERS: re.compile(r"(?<![裙内])裤(?![腿脚身型腰头口管袢兜长线袋边装子裙])")}
# polo alone is the shirt, but polo领 is a collar on anything and polo ralph lauren a brand.
_NOUN_PATTERN = re.compile("|".join(re.escape(noun) + ("(?![a-z领])" if noun == "polo" else "")
                                    for noun in sorted(GARMENTS, key=lambda n: (-len(n), n))))
# A noun followed by these is a style, a part or a likeness, not the garment: 衬衫式, 西装领, 鱼尾裙摆, 睡衣风,
# 上衣剪裁 (a dress's bodice), 西服翻领, 西装面料, 束脚裤的版型, 半身裙的飘逸感.
_NOT_THE_GARMENT_AFTER = re.compile(
    r"式|风|感|般|领|袖|摆|腿|脚|型|版|料|面料|元素|部分|部位|剪裁|裁剪|样式|造型|翻领|驳领|的版型|的样|的[^，。！？；,!?;]{0,4}感")
# A noun followed by these is one of a pair of garments (短裤配卫衣), not the product on its own.
_PAIRED_AFTER = re.compile(r"配|搭|加|和|与|或|、|\+")
# Words that start a pairing suggestion or a comparison: the garments after them, to the end of the clause,
# are not the product. 配 also starts 配色 / 配饰, 比 starts 比例, 与 starts 与众不同, 当 starts 当然.
PAIRING_CUES = (r"(?<!百)搭|叠穿|配(?![色饰置比备送])|和|与(?!众)|或|及|还是|无论|不论|不管|塞进|扎进|束进|掖进|把|"
                r"里面|任何|当(?!然|下|时)|内穿|下身|下半身|下装|不是|外面|套上|套在|加上|换上|衬托|比(?![例较])|像|"
                r"有点|仿佛|如同|跟|说起|说到|提到|相对于|相比|对比|没有|喜欢")
_CUE_PATTERN = re.compile(PAIRING_CUES)
# A noun shortly after one of these is the product, whatever cue came before (搭配这款阔腿裤), unless the words
# between hold a cue or another garment (这款阔腿裤搭配短裤).
_THIS = re.compile(r"(这|此|本|该|那)(款|件|条|套|一款|一件|一条)(?P<gap>[^，。！？；,!?;]{0,6})$")
CLAUSE_END = "，。！？；,!?;~～\n"


@dataclass(frozen=True)
class Mention:
    """A garment noun in a text at [start, end): `named` when the text points at it (这款…), `paired` when it
    sits in a pairing suggestion or comparison, `phrase` the words of its clause before it (its modifiers)."""

    noun: str
    start: int
    end: int
    named: bool
    paired: bool
    phrase: str

    @property
    def product(self) -> bool:
        """Whether the mention names the product itself."""
        return self.named or (not self.paired and self.noun not in WEAK_NOUNS)


def _clause_end(text: str, position: int) -> int:
    while position < len(text) and text[position] not in CLAUSE_END:
        position += 1
    return position


def _clause_start(text: str, position: int) -> int:
    while position > 0 and text[position - 1] not in CLAUSE_END:
        position -= 1
    return position


def pairing_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) spans of text about something other than the product (worn with it, compared with it):
    from a pairing cue to the end of its clause."""
    return [(match.start(), _clause_end(text, match.end())) for match in _CUE_PATTERN.finditer(text)]


def inside(position: int, spans: Sequence[tuple[int, int]]) -> bool:
    """Whether position falls in one of the [start, end) spans."""
    return any(start <= position < end for start, end in spans)


def garment_mentions(text: str) -> list[Mention]:
    """Every garment noun in text (lower-cased; longest first, not overlapping), in order. Not a mention at all:
    a noun used as a style, part or likeness (_NOT_THE_GARMENT_AFTER) or as the modifier of the next noun
    (睡衣短裤: the shorts are the garment)."""
    lowered = text.lower()
    spans = pairing_spans(lowered)
    found: list[tuple[int, int, str]] = []
    taken = [False] * len(lowered)
    for match in _NOUN_PATTERN.finditer(lowered):
        found.append((match.start(), match.end(), match.group(0)))
        taken[match.start() : match.end()] = [True] * (match.end() - match.start())
    for category, pattern in _BARE.items():
        found += [(m.start(), m.end(), category) for m in pattern.finditer(lowered) if not taken[m.start()]]
    found.sort()
    starts = {start for start, _, _ in found}
    mentions = []
    for start, end, noun in found:
        if end in starts or _NOT_THE_GARMENT_AFTER.match(lowered, end):
            continue
        phrase = lowered[_clause_start(lowered, start) : start]
        this = _THIS.search(phrase[-10:])
        named = bool(this) and not (_CUE_PATTERN.search(this["gap"]) or _NOUN_PATTERN.search(this["gap"]))
        mentions.append(Mention(noun, start, end, named=named,
                                paired=inside(start, spans) or bool(_PAIRED_AFTER.match(lowered, end)),
                                phrase=phrase))
    return mentions


def _facet(value: str) -> str:
    """What an input value of a narrowing key specifies: its noun's facet, a kind when it is no noun (a字)."""
    garment = GARMENTS.get(value)
    return garment.facet if garment else KIND


def garment_names(pairs: Attributes, facet: str) -> list[str]:
    """The names the input gives the garment in one facet (values of NARROWING_KEYS, one-character ones such as
    衫 too vague to count) and their qualifiers without the head noun (阔腿裤 -> 阔腿) when two characters or more."""
    names = []
    for key, value in pairs:
        value = value.lower()
        if key in NARROWING_KEYS and len(value) > 1 and _facet(value) == facet:
            names.append(value)
            if len(value.rstrip("裙裤衫衣服")) > 1:
                names.append(value.rstrip("裙裤衫衣服"))
    return names


def noun_fits(noun: str, pairs: Attributes, phrase: str = "") -> bool:
    """Whether the garment noun, after `phrase` in its clause, can name the product with these attributes:
    * its category is the input's 类型 (or the input has none);
    * it contradicts no input value (its conflicts), unless an input value supports it;
    * when the input names the garment in the noun's facet (length 九分裤, piece 连衣裙, kind 阔腿裤 / 套头衫),
      a specific noun needs a support term in an input value, or its phrase must keep the input's name
      (阔腿牛仔裤 for 阔腿裤). An input silent on the facet leaves any noun of the category possible, except in
      the facets only the input can name (_NAMED_ONLY_BY_INPUT: a jumpsuit)."""
    kinds = {value for key, value in pairs if key == TYPE_KEY}
    categories = _CATEGORIES.get(noun) or (GARMENTS[noun].category,)
    if kinds and ANY not in categories and not kinds & set(categories):
        return False
    garment = GARMENTS.get(noun)
    if garment is None:  # a bare 裙 / 裤
        return True
    given = " ".join(value.lower() for _, value in pairs)
    own = noun.rstrip("裙裤衫衣服")  # 吊带 for 吊带裙: the input names what the noun is made of
    if any(term in given for term in garment.support) or (len(own) > 1 and own in given):
        return True
    if any(term in given for term in garment.conflicts) or (garment.category, garment.facet) in _NAMED_ONLY_BY_INPUT:
        return False
    names = garment_names(pairs, garment.facet)
    return not garment.support or not names or any(name in phrase[-6:] + noun for name in names)


# What else a text pairs the product with: shoes, bags, hats, scarves, jewellery (never the product here).
_ACCESSORIES = re.compile(r"鞋|靴|包包|手提包|背包|挎包|帽子|棒球帽|渔夫帽|围巾|丝巾|袜|项链|耳环|手链|墨镜")


def other_garment_spans(text: str) -> list[tuple[int, int]]:
    """The pairing spans (pairing_spans) that name another garment or an accessory: the attribute values in them
    describe that item (搭配白色t恤, 搭配白色短靴), while a cue with no item after it is just a conjunction
    (条纹和波点)."""
    lowered = text.lower()
    others = [m.start for m in garment_mentions(lowered) if not m.product]
    others += [match.start() for match in _ACCESSORIES.finditer(lowered)]
    return [(start, end) for start, end in pairing_spans(lowered) if any(start <= o < end for o in others)]


def product_type_mismatches(text: str, pairs: Attributes) -> list[str]:
    """The garment nouns that text uses for the product (Mention.product: pairing suggestions and unmarked
    category words left out) that do not fit the input (noun_fits), in order of appearance, each once."""
    return list(dict.fromkeys(m.noun for m in garment_mentions(text)
                              if m.product and not noun_fits(m.noun, pairs, m.phrase)))


# Parts a garment does not have: trousers and skirts (not dresses) have no collar or sleeves. Jumpsuits,
# dungarees and anything with straps (连体裤, 背带裤/裙, 吊带) do, so their inputs are exempt.
PART_KEYS = ("衣领型", "裙领型", "衣袖长", "裙袖长", "衣袖型", "裙袖型")
_HAS_UPPER_BODY = ("连体裤", "连衣裤", "背带", "连衣裙", "吊带")
GENERIC_PART_VALUES = frozenset({"收口"})  # 收口 is any gathered edge (a waistband, a hem), not only a cuff
# Parts only trousers have (found by reading: 翻遍的裤脚 on a skirt); an input value with 裤 (裙裤, 连体裤) has them.
TROUSER_PARTS = ("裤脚", "裤腿", "裤管")
TROUSER_PART_KEY = "裤部件"
# Collar and sleeve words that are no value of any key (the lexicon has 罗纹袖口, not 袖口), found by reading: a
# cuff that hugs the wrist on a 半身裙. Reported under these keys.
UPPER_BODY_PARTS = {"袖口": "袖型", "袖子": "袖型", "衣袖": "袖型", "领口": "领型", "衣领": "领型", "领子": "领型"}


def lower_body_only(pairs: Attributes) -> bool:
    """Whether the input describes trousers, or a skirt that is not a dress (半身裙), and lists no collar or
    sleeve itself (an input that does is a set, 半身裙 with a top)."""
    kinds = {value for key, value in pairs if key == TYPE_KEY}
    given = " ".join(value for _, value in pairs)
    if any(term in given for term in _HAS_UPPER_BODY) or any(key in PART_KEYS for key, _ in pairs):
        return False
    return kinds == {TROUSERS} or (kinds == {SKIRT} and "半身裙" in given)


def find_values(text: str, candidates: Sequence[tuple[str, str]], skip: Sequence[tuple[int, int]] = ()
                ) -> list[tuple[str, str]]:
    """The (key, value) candidates whose value occurs in text (lower case) outside the skip spans, matched
    longest first so that a place counts once (短袖 inside 七分短袖 is not found again), each value once."""
    lowered = text.lower()
    taken = [False] * len(lowered)
    found: dict[str, tuple[str, str]] = {}
    for key, value in _present(lowered, _value_index(tuple(candidates))):
        for match in re.finditer(re.escape(value.lower()), lowered):
            if any(taken[match.start() : match.end()]) or inside(match.start(), skip):
                continue
            taken[match.start() : match.end()] = [True] * (match.end() - match.start())
            found.setdefault(value, (key, value))
    return list(found.values())


@lru_cache(maxsize=4096)  # the same candidate lists (one row's) are matched against every clause of its texts
def _value_index(candidates: tuple[tuple[str, str], ...]) -> tuple[dict[str, list[tuple[str, str]]], list[int]]:
    """Each lower-case value -> its (key, value) candidates, and the values' lengths."""
    index: dict[str, list[tuple[str, str]]] = {}
    for key, value in candidates:
        index.setdefault(value.lower(), []).append((key, value))
    return index, sorted({len(value) for value in index})


def _present(lowered: str, value_index: tuple[dict[str, list[tuple[str, str]]], list[int]]) -> list[tuple[str, str]]:
    """The candidates whose value occurs in lowered, longest first (ties: by value, then key): each substring of
    a value's length is looked up, which beats testing a few thousand values against a short clause."""
    index, lengths = value_index
    present = {pair: None for length in lengths for start in range(len(lowered) - length + 1)
               for pair in index.get(lowered[start:start + length], ())}
    return sorted(present, key=lambda kv: (-len(kv[1]), kv[1], kv[0]))


def incompatible_parts(text: str, pairs: Attributes, value_lexicon: Mapping[str, Sequence[str]]
                       ) -> list[tuple[str, str]]:
    """(key, value) of the collar and sleeve values (PART_KEYS' known values, UPPER_BODY_PARTS) that text gives to
    a product that has neither (lower_body_only), and of the trouser parts (TROUSER_PARTS) it gives to a product
    no input value calls trousers, outside suggestions of another garment (other_garment_spans): 经典的圆领 on
    trousers or 翻边的裤脚 on a skirt, not 搭配圆领t恤."""
    candidates = [(TROUSER_PART_KEY, part) for part in TROUSER_PARTS] if not any(
        "裤" in value for _, value in pairs) else []
    if lower_body_only(pairs):
        candidates += [(key, value) for key in PART_KEYS for value in value_lexicon.get(key, ())
                       if len(value) > 1 and value not in GENERIC_PART_VALUES]
        candidates += [(key, part) for part, key in UPPER_BODY_PARTS.items()]
    return find_values(text, candidates, other_garment_spans(text)) if candidates else []
