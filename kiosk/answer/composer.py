"""Answer stage: decides, from ranked hits, whether the kiosk answers, asks back, or says
honestly that it does not know — it never reads out a wrong answer with confidence.

CONTRACT:
    AnswerKind, Answer, AnswerComposer(settings: AnswerSettings, categories: Sequence[str])
    AnswerComposer.compose(query: str, hits: Sequence[Hit]) -> Answer
    AnswerComposer.compose_heard(heard: Sequence[tuple[str, Sequence[Hit]]]) -> Answer
        — the recogniser's transcripts in its order, each with its hits; one the content
          fits better than the first is used, and then always asked back
    AnswerComposer.wants_alternatives(first_hits) -> bool — whether the other transcripts
        are worth searching at all (kiosk.dialogue.ask does the searching)
    AnswerComposer.compose_nearby(request: NearbyRequest, *, heard_alike, confidence,
                                  noise_dbfs) -> Answer
        — a "near X" question the places stage recognised (kiosk.dialogue.ask): the
          nearest suitable sites, read out at once unless the hearing is doubted

The decision itself is a plain record (kiosk.answer.contract: Answer, AnswerKind).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from kiosk.answer.contract import _TRAILING_PAREN, Answer, AnswerKind, topic_of
from kiosk.config import AnswerSettings, SiteSettings
from kiosk.content.contract import SITE_GUIDE_CATEGORY, Entry
from kiosk.search.contract import Hit
from kiosk.search.places import EVACUATION, SHELTER, NearbyRequest, NearbySite, walk_minutes

_WHERE = re.compile(r"どこ|どちら|何階|なんかい|なんがい|場所|ありますか|ある[？?]|あります[？?]|"
                    r"行きたい|いきたい|使いたい|つかいたい|借りたい|どっち")
#: Other buildings a question may name; then it is not about the one the kiosk stands in.
_BUILDINGS = ("市役所", "公民館", "図書館", "体育館", "博物館", "駅", "学校", "病院", "児童館",
              "センター")
#: How much more of a where-question another entry must cover than the building guide's
#: entry for the guide to give way (the guide's entries cover their own questions fully).
_GUIDE_YIELDS_BY = 0.2
#: How many of each transcript's hits a doubted question's ask-back pools (_heard_choices).
_POOLED_DEPTH = 5
_WORD_CHAR = re.compile(r"[一-龥々〆ヵヶァ-ヺー]")


def _names_word(query: str, word: str) -> bool:
    """`word` stands on its own in `query`: トイレ in 「トイレはどこ」, not in 「携帯トイレ」."""
    start = query.find(word)
    while start >= 0:
        before = query[start - 1] if start else ""
        if not (before and _WORD_CHAR.match(before)):
            return True
        start = query.find(word, start + 1)
    return False




def _note_named(query: str, hit: Hit) -> bool:
    """The question says the word an entry's title notes in brackets (（駐車場）)."""
    paren = _TRAILING_PAREN.match(hit.entry.title.strip())
    return bool(paren) and paren["note"] in query


def _top_confidence(hits: Sequence[Hit]) -> float:
    """The confidence of the candidate that would be read out."""
    return max(hits, key=lambda h: h.score).confidence if hits else 0.0


def _agree(answer: Answer, heard: Sequence[tuple[str, Sequence[Hit]]]) -> bool:
    """Every transcript heard leads to the entry the answer would read out (one that finds
    nothing disagrees)."""
    if not answer.candidates:
        return False
    entry = answer.candidates[0].entry.id
    return all(hits and max(hits, key=lambda h: h.score).entry.id == entry for _, hits in heard)


class AnswerComposer:
    """Turns ranked hits into an honest decision.

    Thresholds use `Hit.confidence` (0..1, comparable across queries); closeness of the top
    two uses the raw scores, which are comparable within one query.
    """

    def __init__(self, settings: AnswerSettings, categories: Sequence[str],
                 site: SiteSettings | None = None):
        self.settings = settings
        self.categories = tuple(dict.fromkeys(c for c in categories if c))
        self.site = site or SiteSettings()

    def compose(self, query: str, hits: Sequence[Hit]) -> Answer:
        ranked = self._rank(hits)
        guide = self._building_guide_hit(query, ranked)
        if guide is not None:
            ranked = (guide, *(h for h in ranked if h is not guide))
            return Answer(AnswerKind.CONFIDENT, query, ranked)
        best = ranked[0] if ranked else None
        if best is None or best.confidence < self.settings.min_score or best.score <= 0:
            return Answer(AnswerKind.NONE, query, ranked, self._suggestions(ranked))
        rivals = [h for h in ranked[1:] if self._rivals(best, h)]
        named = next((h for h in rivals if _note_named(query, h) and not _note_named(query, best)),
                     None)
        if named is not None:  # 「市役所に駐車場はありますか」: the entry noted （駐車場） first
            ranked = (named, *(h for h in ranked if h is not named))
        if rivals or best.confidence < self.settings.sure_score:
            count = min(1 + len(rivals), max(1, self.settings.max_choices))
            return Answer(AnswerKind.UNSURE, query, ranked, self._suggestions(ranked), count)
        return Answer(AnswerKind.CONFIDENT, query, ranked)

    def wants_alternatives(self, first_hits: Sequence[Hit], *, noise_dbfs: float | None = None,
                           confidence: float = 1.0) -> bool:
        """The first transcript keeps the benefit of the doubt: the others are searched only
        when no entry covers it fully, and never where [answer] alternative_margin is 1 —
        except where they are the check that the first one was heard right (a recogniser
        confidence below [answer] agreement_below, or a noisy room)."""
        if self._needs_agreement(noise_dbfs, confidence):
            return True
        return _top_confidence(first_hits) < 1.0 and self.settings.alternative_margin < 1.0

    def _noisy(self, noise_dbfs: float | None) -> bool:
        return noise_dbfs is not None and noise_dbfs > self.settings.noisy_room_dbfs

    def _needs_agreement(self, noise_dbfs: float | None, confidence: float) -> bool:
        return confidence < self.settings.agreement_below or (
            self._noisy(noise_dbfs) and self.settings.noisy_needs_agreement)

    def wants_sound_alikes(self, *, noise_dbfs: float | None = None,
                           confidence: float = 1.0) -> bool:
        """Whether the entries that sound like the question are worth looking up: only
        where a doubted question's ask-back would pool them (compose_heard)."""
        return self.settings.sound_alike_weight > 0 and \
            self._needs_agreement(noise_dbfs, confidence)

    def compose_heard(self, heard: Sequence[tuple[str, Sequence[Hit]]], *,
                      confidence: float = 1.0, noise_dbfs: float | None = None,
                      sound_alikes: Sequence[Hit] = ()) -> Answer:
        """Answer what was heard: the recogniser's first transcript, unless one of its other
        transcripts (n-best, in its order) fits an entry clearly better.

        A recogniser's first choice among near-homophones is often a word the city content
        never uses (「レッドボトル」 for ペットボトル); its runner-up is the one the content
        covers. Another transcript wins only with a confidence higher by [answer]
        alternative_margin, and an answer from another transcript is asked back
        (「ペットボトルの出し方についてですか？」), never read out at once — the recogniser
        itself preferred something else, and a garbled runner-up can fit a wrong entry well
        (measured: bench/asr_bench.py).

        `confidence` is the recogniser's (0..1) and `noise_dbfs` the room's noise floor at
        the microphone (the audio front end's estimate): below [answer] min_heard_confidence
        — or [answer] min_heard_confidence_noisy once the room is louder than
        [answer] noisy_room_dbfs — the answer is asked back instead of read out, because a
        wrong entry read out at once is worse than a question back. Below [answer]
        agreement_below, and in a noisy room with [answer] noisy_needs_agreement, every
        other transcript must also lead to the same entry: reverberation and babble make
        whisper fairly confidently write a garbled question (「マイナンバーを楽しんでしまいま
        した」, 「コンビニ届け…」), and its runners-up disagreeing is the sign.

        `sound_alikes` are the entries whose title or keyword sounds like what was heard
        (Searcher.sounds_like); they join a doubted question's choices only."""
        if not heard:
            return Answer(AnswerKind.NONE, "", (), self._suggestions(()))
        chosen, hits = heard[0]
        first = best = _top_confidence(hits)
        if self.wants_alternatives(hits):
            for text, other in heard[1:]:
                conf = _top_confidence(other)
                if conf >= first + self.settings.alternative_margin and conf > best:
                    chosen, hits, best = text, other, conf
        answer = self.compose(chosen, hits)
        bar = self._heard_bar(noise_dbfs)
        if self._noisy(noise_dbfs) and self._concur(answer, heard):
            bar = min(bar, max(self.settings.min_heard_confidence,
                               self.settings.min_heard_confidence_agreeing))
        checked = self._needs_agreement(noise_dbfs, confidence)
        # doubted: the transcripts disagree, or one generic word (出せば, とりたい) covers
        # half an entry of a misheard question
        doubted = checked and (not _agree(answer, heard) or _top_confidence(
            answer.candidates) < self.settings.sure_score_doubted)
        if (chosen != heard[0][0] or confidence < bar or doubted) \
                and answer.kind is AnswerKind.CONFIDENT:
            answer = replace(answer, kind=AnswerKind.UNSURE,
                             suggestions=self._suggestions(answer.candidates))
        if answer.kind is not AnswerKind.CONFIDENT and checked:
            answer = self._heard_choices(answer, heard, sound_alikes)  # doubted: offer all found
        return answer

    def _heard_bar(self, noise_dbfs: float | None) -> float:
        """The recogniser confidence below which what was heard is asked back: [answer]
        min_heard_confidence, min_heard_confidence_noisy in a noisy room."""
        bar = self.settings.min_heard_confidence
        if self._noisy(noise_dbfs):
            bar = max(bar, self.settings.min_heard_confidence_noisy)
        return bar

    def _concur(self, answer: Answer, heard: Sequence[tuple[str, Sequence[Hit]]]) -> bool:
        """Two or more different transcripts all lead to the answer's entry, each at
        [answer] sure_score or more: strong evidence even when their words differ (measured
        in the simulated lobby: 45 such questions in noise and echo-free rooms, none wrong)."""
        return len(heard) >= 2 and _agree(answer, heard) and all(
            _top_confidence(hits) >= self.settings.sure_score for _, hits in heard)

    def _heard_choices(self, answer: Answer, heard: Sequence[tuple[str, Sequence[Hit]]],
                       sound_alikes: Sequence[Hit] = ()) -> Answer:
        """The ask-back of a question the kiosk doubts it heard right: the entries all of
        the recogniser's transcripts lead to, pooled, not only the first one's best — in
        noise the right entry is often second for one transcript and first for another
        (「いっかこのクショーなくしました」 → マイナンバーカード first, 印鑑登録証 second).
        Each transcript's first _POOLED_DEPTH hits count their confidence, divided by their
        rank and by the transcript's place in the recogniser's order; the best
        [answer] max_choices are offered. A question nothing was found for is offered
        choices too once a pooled entry reaches [answer] heard_choice_min_score. An entry
        that sounds like the question (「押して庁」 → 母子手帳) adds its closeness times
        [answer] sound_alike_weight: the words are lost, their sound is not. Never read
        out at once: choosing is the visitor's."""
        weighted = [(hit, hit.confidence / rank / place)
                    for place, (_text, hits) in enumerate(heard, 1)
                    for rank, hit in enumerate(self._rank(hits)[:_POOLED_DEPTH], 1)]
        weighted += [(hit, hit.confidence * self.settings.sound_alike_weight)
                     for hit in sound_alikes]
        pooled: dict[str, float] = {}
        strongest: dict[str, Hit] = {}
        for hit, weight in weighted:
            key = hit.entry.id
            pooled[key] = pooled.get(key, 0.0) + weight
            if key not in strongest or hit.confidence > strongest[key].confidence:
                strongest[key] = hit
        floor = self.settings.heard_choice_min_score
        offered = [strongest[k] for k in sorted(pooled, key=lambda k: -pooled[k])
                   if strongest[k].confidence >= floor and strongest[k].score > 0]
        if not offered:
            return answer
        ids = {h.entry.id for h in offered}
        rest = tuple(h for h in answer.candidates if h.entry.id not in ids)
        count = min(max(1, self.settings.max_choices), len(offered))
        return Answer(AnswerKind.UNSURE, answer.query, (*offered, *rest),
                      self._suggestions(offered), count)

    def compose_nearby(self, request: NearbyRequest, *, heard_alike: bool = True,
                       confidence: float = 1.0, noise_dbfs: float | None = None) -> Answer:
        """The nearest suitable sites, said short (name, town, about how far on foot) and
        shown in full (every suitable site, nearest first): an answer from positions, so it
        holds no guess about which entry was meant — but it does about what was heard. In
        babble 「…運動公園で毎回は近いますか?」 (a Wi-Fi question) read as "near" gave the
        nearest parks, so the noise rules of compose_heard apply: below [answer]
        min_heard_confidence (min_heard_confidence_noisy in a noisy room), or where the
        hearing needs agreement and not every transcript asked for the same places
        (`heard_alike` False), the places are offered as an ask-back instead."""
        entry = nearby_entry(request, self.site)
        doubted = confidence < self._heard_bar(noise_dbfs) or (
            self._needs_agreement(noise_dbfs, confidence) and not heard_alike)
        kind = AnswerKind.UNSURE if doubted else AnswerKind.CONFIDENT
        return Answer(kind, request.question, (Hit(entry, 1.0, 1.0),), nearby=request)

    def _building_guide_hit(self, query: str, ranked: Sequence[Hit]) -> Hit | None:
        """For "where is … here" (「トイレはどこですか」), the building guide's entry for the
        thing named, whatever else mentions the word in passing (携帯トイレ in the
        stockpile entry); None when the question is no where-question, names another
        building than the kiosk's, or the guide has no entry for it."""
        if not _WHERE.search(query):
            return None
        if any(b in query and b not in self.site.name for b in _BUILDINGS):
            return None
        for hit in ranked:
            entry = hit.entry
            if entry.category != SITE_GUIDE_CATEGORY:
                continue
            words = (topic_of(entry.title), *entry.keywords)
            if any(w and _names_word(query, w) for w in words):
                if self._covered_better_elsewhere(hit, ranked):
                    return None
                return hit
        return None

    def _covered_better_elsewhere(self, guide: Hit, ranked: Sequence[Hit]) -> bool:
        """An entry outside the guide ranks above its hit and covers the question more
        fully by _GUIDE_YIELDS_BY: the guide's word was said in passing
        (「困ったことを相談できるところはありますか」 names 困った, a keyword of 職員はどこ, but
        is about the consultation desk)."""
        for hit in ranked:
            if hit is guide:
                return False
            if hit.entry.category != SITE_GUIDE_CATEGORY and \
                    hit.confidence >= guide.confidence + _GUIDE_YIELDS_BY:
                return True
        return False

    def _rank(self, hits: Sequence[Hit]) -> tuple[Hit, ...]:
        """Best first, in the search stage's order: its score already mixes BM25 with how much
        of the question an entry covers, so weighting by confidence again here would count
        coverage twice and lift generic entries over the specific one."""
        return tuple(sorted(hits, key=lambda h: h.score, reverse=True))

    def _rivals(self, best: Hit, other: Hit) -> bool:
        """Whether `other` is about as good an answer as `best`, so the kiosk must ask."""
        ratio = self.settings.ambiguity_ratio
        return other.score >= best.score * ratio and other.confidence >= best.confidence * ratio

    def _suggestions(self, ranked: Sequence[Hit]) -> tuple[str, ...]:
        """Categories to offer: those of the weak candidates first (they hint at what was
        meant), then the rest in the index's order."""
        hinted = [h.entry.category for h in ranked if h.entry.category]
        ordered = list(dict.fromkeys([*hinted, *self.categories]))
        return tuple(ordered[: max(0, self.settings.max_suggestions)])


# --------------------------------------------------------------------------- nearby answers


def _what(request: NearbyRequest) -> str:
    """What was asked for, as the answer names it: 指定避難所, 洪水のときの避難場所, 公民館."""
    if request.kind in (SHELTER, EVACUATION) and request.hazard:
        return f"{request.hazard}のときの避難場所"
    return request.kind


def _from(request: NearbyRequest) -> str:
    origin = request.origin
    return "ここ" if origin.kind == "here" else origin.name


def distance_words(metres: float) -> str:
    """約350メートル / 約1.2キロ: rounded as people say distances."""
    if metres < 1000:
        return f"約{max(50, int(round(metres / 50.0)) * 50)}メートル"
    return f"約{metres / 1000:.1f}キロ"


def walk_words(metres: float, site: SiteSettings) -> str:
    minutes = walk_minutes(metres, site.walk_metres_per_minute)
    return "歩くと1時間以上" if minutes > 60 else f"歩いて{minutes}分ほど"


def _roles(n: NearbySite) -> str:
    parts = []
    if SHELTER in n.roles:
        parts.append("指定避難所")
    if EVACUATION in n.roles:
        parts.append("避難場所（" + "、".join(n.hazards) + "）" if n.hazards else "避難場所")
    return "・".join(parts)


def nearby_entry(request: NearbyRequest, site: SiteSettings) -> Entry:
    """The answer to a "near X" question as an entry the screen and the voice already know
    how to show and read: the nearest few first, then the full list, with the source."""
    what, origin = _what(request), _from(request)
    here = f"ここ（{site.name}）" if request.origin.kind == "here" else origin
    nearest = request.sites[: site.nearest_count]
    sources = list(dict.fromkeys(n.source for n in request.sites if n.source))
    title = f"{here}の近くの{what}"
    if not nearest:
        body = (f"{what}として決められた場所は、キオスクのデータにはありません。"
                "安全な場所や逃げ方は、市役所（代表 046-223-1511）へお問い合わせください。"
                "命の危険があるときは、すぐに119番に電話してください。")
        spoken = f"{what}として決められた場所は、データにありません。市役所へお問い合わせください。"
        return Entry(id=f"nearby-{request.kind}-{request.hazard}-none", title=title, body=body,
                     spoken=spoken, category="防災", keywords=(what,))
    explain = {
        SHELTER: "指定避難所は、家に住めなくなったときに、しばらくくらす場所です。",
        EVACUATION: "指定緊急避難場所は、災害のときに、命を守るために急いで逃げる場所です。",
    }.get(request.kind, "")
    if request.hazard:
        explain = (f"{request.hazard}のときの避難場所として決められた場所だけを、"
                   "近い順にのせています。")
    lines = [f"{here}から近い{what}です。{explain}",
             "距離は、まっすぐ測ったおよその目安です。実際の道のりは、もっと長くなります。"]
    for k, n in enumerate(nearest, 1):
        lines.append(f"{k}. {n.name}（{n.town}）：{distance_words(n.distance_m)}、"
                     f"{walk_words(n.distance_m, site)}。住所は{n.address}。{_roles(n)}")
    rest = request.sites[len(nearest):]
    if rest:
        lines.append(f"ほかの{what}（近い順、{len(rest)}か所）：")
        lines += [f"・{n.name}（{n.town}、{distance_words(n.distance_m)}）" for n in rest]
    if request.kind in (SHELTER, EVACUATION):
        lines.append("避難所が開いているかどうかは、災害のときに市が知らせます。"
                     "くわしくは市役所（代表 046-223-1511）へお問い合わせください。")
    lines += [f"（{s}）" for s in sources]
    first = nearest[0]
    said = [f"{origin}からいちばん近い{what}は、{first.name}で、{first.town}にあります。"
            f"{walk_words(first.distance_m, site)}です。"]
    others = [f"{n.name}、{walk_words(n.distance_m, site)}" for n in nearest[1:]]
    if others:
        said.append("次は、" + "。その次は、".join(others) + "です。")
    said.append("歩く時間は、およその目安です。")
    return Entry(id=f"nearby-{request.kind}-{request.hazard or 'any'}", title=title,
                 body="\n".join(lines), spoken="".join(said),
                 category="防災" if request.kind in (SHELTER, EVACUATION) else "施設・予約",
                 keywords=(what,), source="、".join(s.removeprefix("出典：") for s in sources),
                 lat=request.origin.lat, lon=request.origin.lon)
