"""English sentences for the synthetic corpus: a small grammar over our own lexicon.

The lexicon below (nouns grouped by meaning, verbs tagged with the kinds of object they take,
adjectives grouped by what they describe) was written for this project. Templates combine it
into statements, questions, commands, compound sentences, and sentences with numbers, prices,
times, dates and spelled-out digit strings. Everything is written in words ("seven fifteen",
"four two nine one"), so the transcript is exactly what the synthesizer says, and every word
normalizes to lowercase ``a-z`` and apostrophes.

``generate_sentences(n, seed)`` is deterministic, and the sentences of a seed form one
stream: asking for more sentences extends the list, it never reorders it.
"""

from __future__ import annotations

import random
from functools import lru_cache
from itertools import islice
from pathlib import Path

import yaml

from ..text import DIGIT_WORDS, normalize_text, number_to_words

MIN_WORDS = 2
MAX_WORDS = 25
# --------------------------------------------------------------------------------------------
# Lexicon: the word lists live in words.yaml beside this module.
# --------------------------------------------------------------------------------------------

_LEXICON = yaml.safe_load((Path(__file__).with_name("words.yaml")).read_text(encoding="utf-8"))
_NOUNS = _LEXICON["nouns"]
_IRREGULAR_PLURALS = _LEXICON["irregular_plurals"]
_OBJECT_GROUPS = {code: tuple(groups) for code, groups in _LEXICON["object_groups"].items()}
_TRANSITIVE = _LEXICON["transitive"]
_STATIVE = set(_LEXICON["stative"].split())
_TRANSITIVE_LISTED = _LEXICON["transitive_listed"]
_INTRANSITIVE = _LEXICON["intransitive"]
_ANIMAL_SOUNDS = _LEXICON["animal_sounds"]
_IRREGULAR_VERBS = {verb: tuple(forms) for verb, forms in _LEXICON["irregular_verbs"].items()}
_DOUBLING = set(_LEXICON["doubling"].split())
_ADJECTIVES = _LEXICON["adjectives"]
_ADVERBS_MANNER = _LEXICON["adverbs_manner"].split()
_TIME_PHRASES = _LEXICON["time_phrases"]
_UNITS = _LEXICON["units"].split()
_TEMPLATE_WORDS = _LEXICON["template_words"]

_WEATHER_NOUN_ADJECTIVES = (
    "heavy",
    "light",
    "strong",
    "cold",
    "warm",
    "gentle",
    "terrible",
    "strange",
    "sudden",
    "bright",
    "thick",
    "icy",
    "loud",
)
_ADVERBS_FREQ = "always never often sometimes usually rarely seldom occasionally".split()
_PREPOSITIONS_PLACE = (
    "in",
    "near",
    "behind",
    "outside",
    "inside",
    "next to",
    "across from",
    "in front of",
    "beside",
    "opposite",
)
_PREPOSITIONS_OUTDOOR = (
    "near",
    "by",
    "across",
    "along",
    "beside",
    "beyond",
    "past",
    "over",
    "on the other side of",
    "at the edge of",
)
_PREPOSITIONS_THING = (
    "on",
    "under",
    "behind",
    "next to",
    "beside",
    "inside",
    "near",
    "on top of",
    "underneath",
)
_MONTHS = (
    "January February March April May June July August September October November December"
).split()
_WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
_ORDINALS_1_19 = (
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh "
    "twelfth thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth "
    "nineteenth"
).split()
_TENS_ORDINALS = {20: "twentieth", 30: "thirtieth"}
_CURRENCIES = (("dollar", "cent"), ("pound", "penny"), ("euro", "cent"))
_PRONOUNS = {  # subject, object, possessive, third person singular
    "I": ("I", "me", "my", False),
    "you": ("you", "you", "your", False),
    "he": ("he", "him", "his", True),
    "she": ("she", "her", "her", True),
    "we": ("we", "us", "our", False),
    "they": ("they", "them", "their", False),
}
_POSSESSIVES = ("my", "your", "his", "her", "our", "their")
_MODALS = ("can", "could", "should", "might", "must", "would")


def _plural(noun: str) -> str:
    if noun in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[noun]
    if noun.endswith("man"):
        return noun[:-3] + "men"
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    if noun.endswith("fe") and noun not in ("safe", "cafe"):
        return noun[:-2] + "ves"
    return noun + "s"


def _past(verb: str) -> str:
    if verb in _IRREGULAR_VERBS:
        return _IRREGULAR_VERBS[verb][0]
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ied"
    if verb in _DOUBLING:
        return verb + verb[-1] + "ed"
    return verb + "ed"


def _participle(verb: str) -> str:
    if verb in _IRREGULAR_VERBS:
        return _IRREGULAR_VERBS[verb][1]
    return _past(verb)


def _third(verb: str) -> str:
    if verb == "have":
        return "has"
    if verb in ("do", "go"):
        return verb + "es"
    if verb.endswith(("s", "x", "z", "ch", "sh")):
        return verb + "es"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def _gerund(verb: str) -> str:
    if verb.endswith("ie"):
        return verb[:-2] + "ying"
    if verb.endswith("e") and not verb.endswith(("ee", "ye", "oe")) and verb != "be":
        return verb[:-1] + "ing"
    if verb in _DOUBLING:
        return verb + verb[-1] + "ing"
    return verb + "ing"


_AN_ANYWAY = {"hour", "honest", "honor", "heir"}
_A_ANYWAY = ("uni", "use", "usu", "uten", "euro", "one", "ukul")


def _article(word: str) -> str:
    w = word.lower()
    if w in _AN_ANYWAY:
        return "an"
    if w.startswith(_A_ANYWAY):
        return "a"
    return "an" if w[0] in "aeiou" else "a"


def _words(block: str) -> list:
    seen = []
    for w in block.split():
        if w not in seen:
            seen.append(w)
    return seen


class _Lexicon:
    def __init__(self):
        self.nouns = {group: _words(text) for group, text in _NOUNS.items()}
        self.mass = {g for g in self.nouns if g.endswith("_mass")}
        self.home = {}  # noun -> the first group that lists it
        for group, nouns in self.nouns.items():
            for noun in nouns:
                self.home.setdefault(noun, group)
        self.adjectives = {group: _words(text) for group, text in _ADJECTIVES.items()}
        self.transitive = {}
        for item in _TRANSITIVE.split():
            verb, codes = item.split(":")
            groups = []
            for code in codes:
                for g in _OBJECT_GROUPS[code]:
                    if g not in groups:
                        groups.append(g)
            self.transitive[verb] = tuple(groups)
        for item in _TRANSITIVE_LISTED.split():
            verb, listed = item.split(":=")
            nouns = listed.split(",")
            unknown = [n for n in nouns if n not in self.home]
            if unknown:
                raise AssertionError(f"{verb}: nouns not in the lexicon: {unknown}")
            self.nouns.setdefault("=" + verb, []).extend(nouns)
            self.transitive[verb] = ("=" + verb,)
        self.transitive_verbs = list(self.transitive)
        self.action_verbs = [v for v in self.transitive_verbs if v not in _STATIVE]
        self.intransitive = {"P": [], "A": []}
        for item in _INTRANSITIVE.split():
            verb, who = item.split(":")
            for w in who:
                if verb not in self.intransitive[w]:
                    self.intransitive[w].append(verb)
        self.time_phrases = [" ".join(p.split()) for p in _TIME_PHRASES.split("|")]
        self.sounds = {k: v.split() for k, v in _ANIMAL_SOUNDS.items()}

    def adjectives_for(self, group: str) -> list:
        if group == "person":
            return self.adjectives["person"]
        if group == "animal":
            return (
                self.adjectives["person"][:30]
                + self.adjectives["color"]
                + self.adjectives["general"][:12]
            )
        if group in ("food", "food_mass", "drink_mass", "meal"):
            return self.adjectives["food"]
        if group in ("building", "outdoor"):
            return self.adjectives["place"]
        if group in ("idea", "event", "text", "song", "abstract_mass"):
            return self.adjectives["abstract"]
        if group == "weather_mass":
            return _WEATHER_NOUN_ADJECTIVES
        return self.adjectives["general"] + self.adjectives["color"]


@lru_cache(maxsize=1)
def _lexicon() -> _Lexicon:
    return _Lexicon()


# --------------------------------------------------------------------------------------------
# Numbers, times, dates.
# --------------------------------------------------------------------------------------------


def ordinal_words(n: int) -> str:
    """1 -> "first", 22 -> "twenty second" (1 to 99)."""
    if not 1 <= n <= 99:
        raise ValueError("ordinal_words handles 1 to 99")
    if n < 20:
        return _ORDINALS_1_19[n - 1]
    tens, ones = divmod(n, 10)
    if ones == 0:
        return number_to_words(n)[:-1] + "ieth"
    return number_to_words(tens * 10) + " " + _ORDINALS_1_19[ones - 1]


def year_words(year: int) -> str:
    """Read a year as people do: 1984 -> "nineteen eighty four", 2007 -> "two thousand seven"."""
    if 2000 <= year <= 2009:
        return number_to_words(year)
    high, low = divmod(year, 100)
    if low == 0:
        return number_to_words(high) + " hundred"
    if low < 10:
        return number_to_words(high) + " oh " + number_to_words(low)
    return number_to_words(high) + " " + number_to_words(low)


def time_words(hour: int, minute: int, style: int = 0) -> str:
    """A clock time in words (12-hour clock): "seven fifteen", "half past nine"..."""
    h12 = hour % 12 or 12
    if minute == 0:
        if style == 1 and hour in (0, 12):
            return "midnight" if hour == 0 else "noon"
        return number_to_words(h12) + " o'clock"
    if style == 1 and minute in (15, 30, 45):
        if minute == 15:
            return "a quarter past " + number_to_words(h12)
        if minute == 30:
            return "half past " + number_to_words(h12)
        return "a quarter to " + number_to_words(hour % 12 + 1)
    if minute < 10:
        return number_to_words(h12) + " oh " + number_to_words(minute)
    return number_to_words(h12) + " " + number_to_words(minute)


# --------------------------------------------------------------------------------------------
# The grammar.
# --------------------------------------------------------------------------------------------


class _Grammar:
    """Builds one sentence from a ``random.Random``; every choice comes from that generator."""

    def __init__(self, rng: random.Random):
        self.r = rng
        self.lex = _lexicon()

    # ----- small helpers
    def pick(self, seq):
        return seq[self.r.randrange(len(seq))]

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def number(self, low: int, high: int) -> int:
        return self.r.randint(low, high)

    def small_number(self) -> int:
        roll = self.r.random()
        if roll < 0.6:
            return self.r.randint(2, 12)
        if roll < 0.9:
            return self.r.randint(13, 99)
        return self.r.randint(100, 999)

    # ----- noun phrases
    def noun(self, group: str) -> str:
        return self.pick(self.lex.nouns[group])

    def adjective(self, group: str) -> str:
        return self.pick(self.lex.adjectives_for(group))

    def noun_phrase(
        self, group: str, *, allow_plural=True, definite_bias=0.5, adjective_p=0.35, modifiers=True
    ) -> tuple:
        """Returns (text, plural)."""
        noun = self.noun(group)
        group = self.lex.home[noun]
        self.last_group = group
        mass = group in self.lex.mass
        plural = (not mass) and allow_plural and self.chance(0.3)
        head = _plural(noun) if plural else noun
        adjs = []
        if modifiers and self.chance(adjective_p):
            adjs.append(self.adjective(group))
            if self.chance(0.15):
                second = self.adjective(group)
                if second != adjs[0]:
                    adjs.insert(0, second)
        phrase = " ".join(adjs + [head])
        if mass:
            det = (
                self.pick(
                    (
                        "the",
                        "the",
                        "some",
                        "my",
                        "our",
                        "this",
                        "that",
                        "their",
                        "no",
                        "a lot of",
                        "a little",
                        "",
                    )
                )
                if not self.chance(definite_bias)
                else "the"
            )
        elif plural:
            if self.chance(0.1):
                det = number_to_words(
                    self.r.randint(2, 20) if self.chance(0.8) else self.small_number()
                )
            else:
                det = self.pick(
                    (
                        "the",
                        "the",
                        "some",
                        "these",
                        "those",
                        "my",
                        "your",
                        "our",
                        "their",
                        "his",
                        "her",
                        "many",
                        "a few",
                        "several",
                        "all the",
                        "two",
                        "three",
                    )
                )
        else:
            if self.chance(definite_bias):
                det = "the"
            else:
                det = self.pick(
                    (
                        "a",
                        "a",
                        "the",
                        "my",
                        "your",
                        "his",
                        "her",
                        "our",
                        "their",
                        "this",
                        "that",
                        "every",
                        "another",
                        "one",
                    )
                )
            if det == "a":
                det = _article(phrase)
        text = (det + " " + phrase).strip()
        return text, plural

    def place_phrase(self) -> str:
        roll = self.r.random()
        if roll < 0.45:
            np_, _ = self.noun_phrase(
                "building", allow_plural=False, definite_bias=0.8, adjective_p=0.2
            )
            return self.pick(_PREPOSITIONS_PLACE) + " " + np_
        if roll < 0.75:
            np_, _ = self.noun_phrase(
                "outdoor", allow_plural=False, definite_bias=0.85, adjective_p=0.2
            )
            return self.pick(_PREPOSITIONS_OUTDOOR) + " " + np_
        np_, _ = self.noun_phrase("thing", allow_plural=False, definite_bias=0.8, adjective_p=0.15)
        return self.pick(_PREPOSITIONS_THING) + " " + np_

    def time_phrase(self) -> str:
        roll = self.r.random()
        if roll < 0.65:
            return self.pick(self.lex.time_phrases)
        if roll < 0.8:
            return "on " + self.pick(_WEEKDAYS)
        if roll < 0.9:
            return "in " + self.pick(_MONTHS)
        return "at " + self.clock()

    def subject(self, animals=True) -> tuple:
        """Returns (text, third_singular, kind) with kind "P" (people) or "A" (animals)."""
        roll = self.r.random()
        if roll < 0.4:
            key = self.pick(list(_PRONOUNS))
            subj, _, _, third = _PRONOUNS[key]
            return subj, third, "P"
        if animals and roll < 0.52:
            text, plural = self.noun_phrase("animal", definite_bias=0.6, adjective_p=0.3)
            return text, not plural, "A"
        text, plural = self.noun_phrase("person", definite_bias=0.45, adjective_p=0.25)
        if text.startswith("every "):
            plural = False
        return text, not plural, "P"

    def object_phrase(self, verb: str) -> str:
        group = self.pick(self.lex.transitive[verb])
        text, _ = self.noun_phrase(group, definite_bias=0.55)
        if self.last_group in ("thing", "food", "clothes") and self.chance(0.08):
            text += " " + self.place_phrase()
        return text

    # ----- verb phrases
    def be(self, subj: str, third: bool, tense: str) -> str:
        if tense == "present":
            return "am" if subj == "I" else ("is" if third else "are")
        return "was" if (subj == "I" or third) else "were"

    def verb_group(self, verb: str, subj: str, third: bool) -> str:
        """Conjugates ``verb`` for the subject in a random tense, aspect or modality."""
        roll = self.r.random()
        if verb in _STATIVE and 0.64 <= roll < 0.75:
            roll = 0.0  # no progressive form for a state
        if roll < 0.36:
            return _past(verb)
        if roll < 0.52:
            return _third(verb) if third else verb
        if roll < 0.6:
            return "will " + verb
        if roll < 0.64:
            return self.be(subj, third, "present") + " going to " + verb
        if roll < 0.7:
            return self.be(subj, third, "present") + " " + _gerund(verb)
        if roll < 0.75:
            return self.be(subj, third, "past") + " " + _gerund(verb)
        if roll < 0.8:
            return ("has " if third else "have ") + _participle(verb)
        if roll < 0.88:
            return self.pick(_MODALS) + " " + verb
        if roll < 0.94:
            return "didn't " + verb
        if roll < 0.97:
            return ("doesn't " if third else "don't ") + verb
        return self.pick(("won't", "can't", "couldn't", "shouldn't")) + " " + verb

    def extras(self, p_place=0.3, p_time=0.3, p_manner=0.12) -> list:
        tail = []
        if self.chance(p_place):
            tail.append(self.place_phrase())
        if self.chance(p_manner):
            tail.append(self.pick(_ADVERBS_MANNER))
        if self.chance(p_time):
            tail.append(self.time_phrase())
        return tail

    # ----- clauses
    def transitive_clause(self, extras=True) -> str:
        subj, third, kind = self.subject()
        verbs = self.lex.transitive_verbs
        verb = self.pick(verbs)
        if kind == "A":
            verb = self.pick(
                (
                    "see",
                    "chase",
                    "follow",
                    "eat",
                    "drink",
                    "find",
                    "like",
                    "hear",
                    "smell",
                    "catch",
                    "watch",
                    "hide",
                    "want",
                    "carry",
                )
            )
        obj = self.object_phrase(verb)
        words = [subj, self.verb_group(verb, subj, third), obj]
        if extras:
            words += self.extras()
        return " ".join(words)

    def intransitive_clause(self, extras=True) -> str:
        subj, third, kind = self.subject()
        if kind == "A" and self.chance(0.5):
            noun = subj.split()[-1]
            singular = next((k for k in self.lex.sounds if k == noun or _plural(k) == noun), None)
            verb = (
                self.pick(self.lex.sounds[singular])
                if singular
                else self.pick(self.lex.intransitive["A"])
            )
        else:
            verb = self.pick(self.lex.intransitive[kind])
        words = [subj, self.verb_group(verb, subj, third)]
        if extras:
            words += self.extras(0.4, 0.35, 0.2)
        return " ".join(words)

    def copula_clause(self) -> str:
        group = self.pick(
            (
                "thing",
                "food",
                "food_mass",
                "building",
                "outdoor",
                "person",
                "animal",
                "idea",
                "event",
                "text",
                "clothes",
                "vehicle",
                "meal",
                "drink_mass",
                "abstract_mass",
                "weather_mass",
                "material_mass",
            )
        )
        subj, plural = self.noun_phrase(group, definite_bias=0.7, adjective_p=0.15)
        if subj.split()[0] in ("no", "a", "an", "every", "another", "one", "a lot of"):
            subj = "the " + " ".join(subj.split()[1:])
            if subj.startswith("the lot of"):
                subj = "the " + subj.split()[-1]
        tense = "present" if self.chance(0.6) else "past"
        be = self.be("it", not plural, tense)
        if self.chance(0.12):
            be += " not" if self.chance(0.5) else ""
            be = (
                be.replace("is not", "isn't")
                .replace("are not", "aren't")
                .replace("was not", "wasn't")
                .replace("were not", "weren't")
            )
        degree = self.pick(
            (
                "",
                "",
                "",
                "very ",
                "really ",
                "quite ",
                "too ",
                "so ",
                "rather ",
                "a little ",
                "always ",
            )
        )
        return f"{subj} {be} {degree}{self.adjective(group)}"

    # ----- sentence templates (each returns text without final punctuation and a mark)
    def t_statement(self):
        if self.chance(0.08):
            # "<subject> <often> <verb> <object>": simple past or present only.
            subj, third, _ = self.subject(animals=False)
            verb = self.pick(self.lex.transitive_verbs)
            form = _past(verb) if self.chance(0.4) else (_third(verb) if third else verb)
            tail = " ".join(self.extras(0.3, 0.0, 0.0))
            return (
                f"{subj} {self.pick(_ADVERBS_FREQ)} {form} {self.object_phrase(verb)} {tail}"
            ), "."
        front = self.time_phrase() + ", " if self.chance(0.12) else ""
        return front + self.transitive_clause(), "."

    def t_intransitive(self):
        return self.intransitive_clause(), "."

    def t_copula(self):
        return self.copula_clause(), "."

    def t_yes_no(self):
        roll = self.r.random()
        subj, third, _ = self.subject(animals=False)
        verb = self.pick(self.lex.transitive_verbs)
        obj = self.object_phrase(verb)
        tail = " ".join(self.extras(0.25, 0.25, 0.0))
        if roll < 0.35:
            aux = "did"
        elif roll < 0.55:
            aux = "does" if third else "do"
        elif roll < 0.7:
            aux = "will"
        else:
            aux = self.pick(("can", "could", "should", "would", "might"))
        return " ".join(w for w in (aux, subj, verb, obj, tail) if w), "?"

    def t_wh_question(self):
        roll = self.r.random()
        subj, third, _ = self.subject(animals=False)
        if roll < 0.2:
            obj, _ = self.noun_phrase("thing", allow_plural=False, definite_bias=0.9)
            verb = self.pick(("put", "leave", "find", "hide", "buy", "keep"))
            return f"where did {subj} {verb} {obj}", "?"
        if roll < 0.35:
            group = self.pick(
                ("animal", "food", "thing", "person", "vehicle", "clothes", "plant", "text")
            )
            noun = _plural(self.noun(group))
            verb = self.pick([v for v, g in self.lex.transitive.items() if group in g])
            aux = self.pick(("did", "will", "can", "does" if third else "do"))
            return f"how many {noun} {aux} {subj} {verb}", "?"
        if roll < 0.5:
            clause = self.copula_clause()
            return "why " + self._invert_copula(clause), "?"
        if roll < 0.62:
            vehicle = self.noun("vehicle")
            verb = self.pick(("leave", "arrive", "stop here", "come back", "depart"))
            aux = self.pick(("does the", "will the", "did the"))
            return f"when {aux} {vehicle} {verb}", "?"
        if roll < 0.76:
            verb = self.pick(self.lex.transitive_verbs)
            obj = self.object_phrase(verb)
            return f"who {_past(verb)} {obj}", "?"
        if roll < 0.88:
            group = self.pick(("food", "thing", "clothes", "vehicle", "text", "song"))
            noun = self.noun(group)
            verb = self.pick([v for v, g in self.lex.transitive.items() if group in g])
            return f"which {noun} {self.pick(('did', 'should', 'will'))} {subj} {verb}", "?"
        verb = self.pick(self.lex.transitive_verbs)
        obj = self.object_phrase(verb)
        return f"what {self.pick(('did', 'will', 'can'))} {subj} {verb} with {obj}", "?"

    def _invert_copula(self, clause: str) -> str:
        words = clause.split()
        for i, w in enumerate(words):
            if w in ("is", "are", "was", "were", "isn't", "aren't", "wasn't", "weren't"):
                rest = [x for x in words[i + 1 :] if x != "not"]
                return " ".join([w] + words[:i] + rest)
        return clause

    def t_imperative(self):
        verb = self.pick(self.lex.action_verbs)
        obj = self.object_phrase(verb)
        tail = self.extras(0.3, 0.25, 0.1)
        roll = self.r.random()
        if roll < 0.35:
            head = "please " + verb
        elif roll < 0.5:
            head = "don't " + verb
        elif roll < 0.62:
            head = "let's " + verb
        elif roll < 0.7:
            head = "never " + verb
        else:
            head = verb
        return " ".join([head, obj] + tail), self.pick((".", ".", ".", "!"))

    def t_short(self):
        roll = self.r.random()
        if roll < 0.3:
            verb = self.pick(self.lex.action_verbs)
            noun = self.noun(self.pick(self.lex.transitive[verb]))
            if self.lex.home[noun] in self.lex.mass:
                return f"{verb} the {noun}", "."
            return f"{verb} {self.pick(('the', 'this', 'that', 'my', 'your'))} {noun}", "."
        if roll < 0.55:
            group = self.pick(
                ("food", "thing", "animal", "plant", "clothes", "vehicle", "building")
            )
            return f"{self.adjective(group)} {_plural(self.noun(group))}", self.pick(
                (".", "!", "?")
            )
        if roll < 0.7:
            verb = self.pick(self.lex.intransitive["P"])
            lead = self.pick(("please", "just", "now", "don't", "let's"))
            return f"{lead} {verb}", self.pick((".", "!"))
        if roll < 0.85:
            noun = self.noun(self.pick(("person", "animal", "vehicle", "thing")))
            where = self.pick(
                ("here", "there", "gone", "back", "outside", "inside", "late", "early", "ready")
            )
            return f"the {noun} {self.pick(('is', 'was'))} {where}", "."
        greeting = self.pick(
            (
                "good morning",
                "good afternoon",
                "good evening",
                "good night",
                "thank you",
                "thanks again",
                "see you",
                "welcome back",
                "excuse me",
                "hello again",
            )
        )
        noun = self.noun("person")
        return f"{greeting} {self.pick(('', 'my '))}{noun}".replace("  ", " "), self.pick(
            (".", "!")
        )

    def t_there(self):
        if self.chance(0.5):
            group = self.pick(("thing", "animal", "food", "person", "vehicle", "plant"))
            noun = self.noun(group)
            adj = self.adjective(group) + " " if self.chance(0.5) else ""
            phrase = adj + noun
            be = self.pick(("is", "was"))
            return f"there {be} {_article(phrase)} {phrase} {self.place_phrase()}", "."
        group = self.pick(("thing", "animal", "food", "person", "vehicle", "plant", "building"))
        n = self.small_number()
        noun = _plural(self.noun(group))
        be = self.pick(("are", "were"))
        tail = (
            self.place_phrase()
            if group != "building"
            else "in this " + self.pick(("town", "city", "village", "street"))
        )
        return f"there {be} {number_to_words(n)} {noun} {tail}", "."

    def money(self) -> str:
        unit, sub = self.pick(_CURRENCIES)
        whole = self.small_number() if self.chance(0.8) else self.r.randint(1000, 9999)
        text = number_to_words(whole) + " " + (unit if whole == 1 else unit + "s")
        if self.chance(0.5):
            cents = self.r.randint(1, 99)
            if sub == "penny":
                subword = "penny" if cents == 1 else "pence"
            else:
                subword = sub if cents == 1 else sub + "s"
            text += " and " + number_to_words(cents) + " " + subword
        return text

    def t_numbers(self):
        roll = self.r.random()
        if roll < 0.25:
            group = self.pick(("food", "thing", "clothes", "vehicle", "text", "instrument"))
            np_, _ = self.noun_phrase(group, allow_plural=False, definite_bias=1.0, adjective_p=0.4)
            verb = self.pick(("costs", "cost", "is", "was"))
            return f"{np_} {verb} {self.money()}", "."
        if roll < 0.45:
            subj, third, _ = self.subject(animals=False)
            verb = self.pick(self.lex.transitive_verbs)
            nouns = [
                n
                for g in self.lex.transitive[verb]
                for n in self.lex.nouns[g]
                if self.lex.home[n] not in self.lex.mass
            ]
            if not nouns:
                verb, nouns = "buy", self.lex.nouns["thing"]
            n = self.small_number()
            return (
                f"{subj} {self.verb_group(verb, subj, third)} {number_to_words(n)} "
                f"{_plural(self.pick(nouns))} " + " ".join(self.extras(0.3, 0.4, 0))
            ), "."
        if roll < 0.6:
            unit = self.pick(_UNITS)
            n = self.small_number()
            noun = number_to_words(n) + " " + _plural(unit)
            pattern = self.pick(
                (
                    "{s} waited for {n}",
                    "the {p} is {n} away",
                    "we walked {n} {t}",
                    "it took {n} to get there",
                    "the trip lasted {n}",
                    "{s} ran {n} {t}",
                    "the {p} is about {n} from here",
                    "{s} stayed for {n}",
                )
            )
            subj, _, _ = self.subject(animals=False)
            return pattern.format(
                s=subj, n=noun, p=self.noun("building"), t=self.time_phrase()
            ).strip(), "."
        if roll < 0.72:
            n = self.r.randint(-20, 45)
            temp = ("minus " + number_to_words(-n)) if n < 0 else number_to_words(n)
            unit = "degree" if abs(n) == 1 else "degrees"
            return self.pick(
                (
                    f"it is {temp} {unit} outside",
                    f"the temperature was {temp} {unit} {self.time_phrase()}",
                    f"it will be {temp} {unit} {self.time_phrase()}",
                )
            ), "."
        if roll < 0.84:
            subj, third, _ = self.subject(animals=False)
            age = self.r.randint(2, 99)
            be = self.be(subj, third, "present")
            return self.pick(
                (
                    f"{subj} {be} {number_to_words(age)} years old",
                    f"{subj} will be {number_to_words(age)} {self.time_phrase()}",
                    (
                        f"my {self.noun('person')} turned {number_to_words(age)} "
                        f"{self.time_phrase()}"
                    ),
                )
            ), "."
        n = self.r.randint(2, 100)
        return self.pick(
            (
                f"about {number_to_words(n)} percent of the {_plural(self.noun('person'))} agreed",
                (
                    f"{number_to_words(n)} {_plural(self.noun('person'))} came to the "
                    f"{self.noun('event')}"
                ),
                (
                    f"the score was {number_to_words(self.r.randint(0, 9))} to "
                    f"{number_to_words(self.r.randint(0, 9))}"
                ),
                (
                    f"page {number_to_words(self.r.randint(1, 400))} is missing from the "
                    f"{self.noun('text')}"
                ),
            )
        ), "."

    def clock(self) -> str:
        hour = self.r.randint(0, 23)
        minute = self.pick(
            (0, 0, 5, 10, 15, 20, 25, 30, 30, 35, 40, 45, 50, 55, self.r.randint(1, 59))
        )
        text = time_words(hour, minute, style=self.r.randint(0, 1))
        if text not in ("noon", "midnight") and self.chance(0.35):
            text += " " + (
                "in the morning"
                if hour < 12
                else "in the afternoon"
                if hour < 18
                else "in the evening"
            )
        return text

    def t_time(self):
        clock = self.clock()
        roll = self.r.random()
        if roll < 0.3:
            vehicle = self.noun("vehicle")
            verb = self.pick(("leaves", "arrives", "departs", "left", "arrived", "will leave"))
            return f"the {vehicle} {verb} at {clock}", "."
        if roll < 0.5:
            event = self.noun("event")
            verb = self.pick(("starts", "begins", "ends", "started", "will start", "finished"))
            return f"the {event} {verb} at {clock}" + (
                " on " + self.pick(_WEEKDAYS) if self.chance(0.4) else ""
            ), "."
        if roll < 0.7:
            return self.pick(
                (
                    f"meet me at {clock}",
                    f"please call me at {clock}",
                    f"we should leave at {clock}",
                    f"let's meet {self.place_phrase()} at {clock}",
                )
            ), "."
        if roll < 0.85:
            subj, _, _ = self.subject(animals=False)
            verb = self.pick(
                (
                    "woke up",
                    "went to bed",
                    "came home",
                    "left the house",
                    "had breakfast",
                    "finished work",
                    "got to the station",
                )
            )
            return f"{subj} {verb} at {clock}", "."
        return self.pick(
            (f"it is {clock}", f"it is almost {clock}", f"what happened at {clock}")
        ), "."

    def date(self) -> str:
        month = self.pick(_MONTHS)
        day = ordinal_words(self.r.randint(1, 28 if month == "February" else 30))
        if self.chance(0.5):
            text = f"the {day} of {month}"
        else:
            text = f"{month} {day}"
        if self.chance(0.4):
            text += " " + year_words(self.r.randint(1900, 2030))
        return text

    def t_date(self):
        roll = self.r.random()
        subj, third, _ = self.subject(animals=False)
        if roll < 0.25:
            be = self.be(subj, third, "past")
            return f"{subj} {be} born on {self.date()}", "."
        if roll < 0.45:
            event = self.noun("event")
            return f"the {event} {self.pick(('is', 'was', 'will be'))} on {self.date()}", "."
        if roll < 0.6:
            place = self.pick(("town", "city", "village", "country", "house", "farm"))
            return (
                f"{subj} moved to {_article(place)} {place} in "
                f"{year_words(self.r.randint(1900, 2030))}"
            ), "."
        if roll < 0.75:
            building = self.noun("building")
            return (
                f"the {building} {self.pick(('opened', 'closed', 'was built'))} in "
                f"{year_words(self.r.randint(1800, 2030))}"
            ), "."
        if roll < 0.88:
            return (
                f"today is {self.pick(_WEEKDAYS)} the "
                f"{ordinal_words(self.r.randint(1, 31))} of {self.pick(_MONTHS)}"
            ), "."
        return f"the deadline is {self.pick(_WEEKDAYS)} {self.date()}", "."

    def digits(self, low=3, high=10) -> str:
        n = self.r.randint(low, high)
        words = []
        for _ in range(n):
            d = self.r.randrange(10)
            words.append("oh" if d == 0 and self.chance(0.3) else DIGIT_WORDS[d])
        return " ".join(words)

    def t_digits(self):
        what = self.pick(
            (
                "phone number",
                "room number",
                "code",
                "pin",
                "account number",
                "ticket number",
                "order number",
                "seat number",
                "locker number",
                "flight number",
                "reference number",
                "extension",
            )
        )
        digits = self.digits(2 if what in ("room number", "seat number", "extension") else 3)
        owner = self.pick(("my", "your", "his", "her", "our", "their", "the"))
        return self.pick(
            (
                f"{owner} {what} is {digits}",
                f"please write down {owner} {what}, {digits}",
                f"the {what} you need is {digits}",
                f"{digits}, that's {owner} {what}",
                f"dial {digits} and wait",
                f"enter {digits} to open the {self.pick(('door', 'gate', 'locker'))}",
            )
        ), "."

    def t_compound(self):
        roll = self.r.random()
        first = self.pick((self.transitive_clause, self.intransitive_clause, self.copula_clause))
        second = self.pick((self.transitive_clause, self.intransitive_clause, self.copula_clause))
        a = first() if first == self.copula_clause else first(extras=self.chance(0.4))
        b = second() if second == self.copula_clause else second(extras=self.chance(0.4))
        if roll < 0.2:
            return f"{a}, and {b}", "."
        if roll < 0.35:
            return f"{a}, but {b}", "."
        if roll < 0.5:
            return f"{a} because {b}", "."
        if roll < 0.62:
            return f"when {a}, {b}", "."
        if roll < 0.72:
            return f"{a} while {b}", "."
        if roll < 0.82:
            subj, _, _ = self.subject(animals=False)
            verb = self.pick(
                (
                    "said",
                    "thinks",
                    "knew",
                    "told me",
                    "believes",
                    "heard",
                    "noticed",
                    "forgot",
                    "remembered",
                    "hopes",
                )
            )
            return f"{subj} {verb} that {a}", "."
        if roll < 0.9:
            return f"I think {a}", "."
        return f"{a}, so {b}", "."

    def t_relative(self):
        verb = self.pick(self.lex.transitive_verbs)
        group = self.pick(self.lex.transitive[verb])
        noun = self.noun(group)
        subj, _, _ = self.subject(animals=False)
        tense_verb = _past(verb)
        adj = self.adjective(self.lex.home[noun])
        be = "was"
        if self.chance(0.5):
            return f"the {noun} that {subj} {tense_verb} {be} {adj}", "."
        person, _ = self.noun_phrase(
            "person", allow_plural=False, definite_bias=1.0, adjective_p=0.0
        )
        verb = _past(self.pick(self.lex.intransitive["P"]))
        return f"{person} who {verb} {self.place_phrase()} is my {self.noun('person')}", "."

    def t_comparison(self):
        group = self.pick(("thing", "building", "animal", "vehicle", "food", "outdoor"))
        a, b = self.noun(group), self.noun(group)
        adj = self.adjective(group)
        return self.pick(
            (
                f"the {a} is as {adj} as the {b}",
                f"the {a} is more {adj} than the {b}",
                f"the {a} was not as {adj} as the {b}",
                f"this {a} is the most {adj} one {self.place_phrase()}",
            )
        ), "."

    def t_possession(self):
        subj, third, _ = self.subject(animals=False)
        group = self.pick(("animal", "thing", "vehicle", "clothes", "instrument", "plant"))
        noun = self.noun(group)
        adj = self.adjective(group)
        roll = self.r.random()
        if roll < 0.5:
            has = "has" if third else "have"
            has = self.pick((has, "had"))
            return f"{subj} {has} {_article(adj)} {adj} {noun}", "."
        if roll < 0.8:
            neg = "doesn't" if third else "don't"
            return f"{subj} {neg} have any {_plural(noun)}", "."
        return (f"{subj} used to have {number_to_words(self.small_number())} {_plural(noun)}"), "."

    def t_weather(self):
        roll = self.r.random()
        adj = self.pick(self.lex.adjectives["weather"])
        when = self.time_phrase()
        if roll < 0.35:
            be = self.pick(("it is", "it was", "it will be", "it might be", "it wasn't"))
            return f"{be} {self.pick(('', 'very ', 'quite ', 'too '))}{adj} {when}", "."
        if roll < 0.6:
            weather = self.noun("weather_mass")
            verb = self.pick(
                (
                    "stopped",
                    "started",
                    "came back",
                    "got worse",
                    "was heavy",
                    "was light",
                    "kept us inside",
                    "will stop soon",
                    "woke me up",
                    "ruined the picnic",
                )
            )
            return f"the {weather} {verb}" + (f" {when}" if self.chance(0.5) else ""), "."
        if roll < 0.8:
            verb = self.pick(
                (
                    "rained",
                    "snowed",
                    "was raining",
                    "was snowing",
                    "is raining",
                    "is snowing",
                    "will rain",
                    "will snow",
                )
            )
            return f"it {verb} {when}", "."
        return (
            f"the weather {self.pick(('is', 'was', 'will be'))} {adj} {self.place_phrase()}"
        ), "."

    TEMPLATES = (
        ("t_statement", 22),
        ("t_intransitive", 9),
        ("t_copula", 6),
        ("t_yes_no", 6),
        ("t_wh_question", 6),
        ("t_imperative", 7),
        ("t_short", 4),
        ("t_there", 4),
        ("t_numbers", 7),
        ("t_time", 5),
        ("t_date", 5),
        ("t_digits", 4),
        ("t_compound", 10),
        ("t_relative", 2),
        ("t_comparison", 2),
        ("t_possession", 3),
        ("t_weather", 3),
    )

    def sentence(self) -> str:
        names = [n for n, _ in self.TEMPLATES]
        weights = [w for _, w in self.TEMPLATES]
        name = self.r.choices(names, weights)[0]
        text, mark = getattr(self, name)()
        text = " ".join(text.split())
        text = " ".join(
            "I" if w == "i" else ("I" + w[1:] if w.startswith("i'") else w) for w in text.split(" ")
        )
        return text[0].upper() + text[1:] + mark


def iter_sentences(seed: int):
    """An endless stream of unique sentences for ``seed`` (unique after normalization)."""
    grammar = _Grammar(random.Random(f"speech_rnn.sentences:{seed}"))
    seen = set()
    while True:
        sentence = grammar.sentence()
        key = normalize_text(sentence)
        if key in seen or not MIN_WORDS <= len(key.split()) <= MAX_WORDS:
            continue
        seen.add(key)
        yield sentence


def generate_sentences(n: int, seed: int) -> list:
    """``n`` unique English sentences, deterministic for ``seed``.

    The result for a larger ``n`` starts with the result for a smaller one.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    return list(islice(iter_sentences(seed), n))


@lru_cache(maxsize=1)
def vocabulary() -> frozenset:
    """Every word (normalized) that the generator can produce."""
    lex = _lexicon()
    words = set()
    for group, nouns in lex.nouns.items():
        for noun in nouns:
            words.add(noun)
            if group not in lex.mass:
                words.add(_plural(noun))
    for unit in _UNITS:
        words.update((unit, _plural(unit)))
    for unit, sub in _CURRENCIES:
        words.update((unit, unit + "s", sub, sub + "s"))
    words.update(("pence", "penny"))
    verbs = set(lex.transitive) | set(lex.intransitive["P"]) | set(lex.intransitive["A"])
    for sounds in lex.sounds.values():
        verbs.update(sounds)
    for verb in verbs:
        words.update((verb, _past(verb), _participle(verb), _third(verb), _gerund(verb)))
    for adjs in lex.adjectives.values():
        words.update(adjs)
    words.update(_ADVERBS_MANNER, _ADVERBS_FREQ, _WEATHER_NOUN_ADJECTIVES)
    for phrase in lex.time_phrases:
        words.update(phrase.split())
    for preps in (_PREPOSITIONS_PLACE, _PREPOSITIONS_OUTDOOR, _PREPOSITIONS_THING):
        for p in preps:
            words.update(p.split())
    words.update(m.lower() for m in _MONTHS)
    words.update(d.lower() for d in _WEEKDAYS)
    words.update(DIGIT_WORDS)
    words.add("oh")
    for n in range(1, 100):
        words.update(ordinal_words(n).split())
    for n in range(1000):
        words.update(number_to_words(n).split())
    words.update(("thousand", "hundred", "minus"))
    words.update(w.lower() for w in _TEMPLATE_WORDS.split())
    words.update(_MODALS)
    for subj, obj, poss, _ in _PRONOUNS.values():
        words.update((subj.lower(), obj, poss))
    return frozenset(normalize_text(w) for w in words if normalize_text(w))
