"""Credentials in prompts, found with Yelp's detect-secrets: its detectors of well-known services' keys and
tokens (AWS, GitHub, GitLab, Slack, Stripe, OpenAI, private key blocks, JWTs, ...) and its keyword
detector (``password = ...``, ``API_KEY: ...``), whose value must also look random (high entropy) and
pass the library's own heuristics against false positives (templates, indirect references, sequences).

The plugins' ``analyze_string`` is used directly: it is pure (no settings, no network: the library's
verification and baseline machinery are left out), so a scan is a handful of regex searches per string.
"""

from __future__ import annotations

import math
import re
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from detect_secrets.filters import heuristic
from detect_secrets.plugins.aws import AWSKeyDetector
from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
from detect_secrets.plugins.base import RegexBasedDetector
from detect_secrets.plugins.basic_auth import BasicAuthDetector
from detect_secrets.plugins.discord import DiscordBotTokenDetector
from detect_secrets.plugins.github_token import GitHubTokenDetector
from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
from detect_secrets.plugins.jwt import JwtTokenDetector
from detect_secrets.plugins.keyword import DENYLIST, KeywordDetector
from detect_secrets.plugins.mailchimp import MailchimpDetector
from detect_secrets.plugins.npm import NpmDetector
from detect_secrets.plugins.openai import OpenAIDetector
from detect_secrets.plugins.private_key import PrivateKeyDetector
from detect_secrets.plugins.pypi_token import PypiTokenDetector
from detect_secrets.plugins.sendgrid import SendGridDetector
from detect_secrets.plugins.slack import SlackDetector
from detect_secrets.plugins.square_oauth import SquareOAuthDetector
from detect_secrets.plugins.stripe import StripeDetector
from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
from detect_secrets.plugins.twilio import TwilioKeyDetector

from gateway import jsonx

#: the detectors of tokens with a recognisable shape (a prefix, a length, a header line), each with the
#: lowercase text one of whose matches must contain (a gate: most text holds none, and a substring test
#: costs far less than the detector's patterns; an empty gate always runs the detector)
SERVICES: dict[type[RegexBasedDetector], tuple[str, ...]] = {
    AWSKeyDetector: ("a3t", "abia", "acca", "akia", "asia", "aws"),
    AzureStorageKeyDetector: ("accountkey=",),
    BasicAuthDetector: ("://",),
    DiscordBotTokenDetector: (),
    GitHubTokenDetector: ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
    GitLabTokenDetector: ("glpat-", "gldt-", "glft-", "glsoat-", "glrt-", "gr1348941", "glcbt-"),
    JwtTokenDetector: ("eyj",),
    MailchimpDetector: tuple(f"-us{digit}" for digit in range(10)),
    NpmDetector: ("_authtoken",),
    OpenAIDetector: ("t3blbkfj",),
    PrivateKeyDetector: ("private key", "putty-user-key"),
    PypiTokenDetector: ("pypi-",),
    SendGridDetector: ("sg.",),
    SlackDetector: ("xox", "hooks.slack.com"),
    SquareOAuthDetector: ("sq0csp-",),
    StripeDetector: ("k_live_",),
    TelegramBotTokenDetector: tuple(f"{digit}:" for digit in range(10)),
    TwilioKeyDetector: (),
}
#: the keyword detector's words, the text of one of which its line must contain
KEYWORD_GATE = ("key", "pass", "pwd", "secret", "contras")


def _trie(words: Iterable[str]) -> str:
    """One pattern matching any of ``words``, as a trie: at each position of a text the regex engine tries
    one branch per next character, where a plain alternation tries every word (several times slower, and this
    runs on every string of every prompt)."""
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        branches = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        group = branches[0] if len(branches) == 1 and "" not in node else f"(?:{'|'.join(branches)})"
        return group + "?" if "" in node else group

    return emit(root)


#: every gate's word and the keyword detector's in one pattern, so that one search of the (lowercase) text
#: says whether any is present (most prose: none), and a few more where each is (:func:`_words`)
_WORDS = re.compile(_trie({word for gate in SERVICES.values() for word in gate} | set(KEYWORD_GATE)))
#: the detectors without a gate word (Discord's and Twilio's tokens) look only at a text holding a run of
#: token characters as long as their shortest token
_TOKEN_RUN = re.compile(r"[a-z0-9_.\-]{34}")
KEYWORD = KeywordDetector.secret_type
#: the parts of a request body that hold prompts (chat, completions, embeddings, Messages, Responses)
PROMPT_KEYS = ("messages", "input", "prompt", "system", "instructions")
#: a tool call's arguments: JSON text (chat ``function.arguments``, a Responses ``function_call``), or an
#: object (MCP, an Anthropic ``tool_use``'s ``input``) whose keys are the caller's own, so scanned too
ARGUMENTS = ("arguments", "input")
#: shorter strings hold no credential any detector knows
MIN_LENGTH = 8
#: a keyword's value is a secret only when it looks random: bits per character over its characters
MIN_ENTROPY = 3.0
MIN_KEYWORD_VALUE = 8
#: texts at least this long are remembered when clean (shorter ones cost less to scan than to remember)
CLEAN_MIN_LENGTH = 512
CLEAN_REMEMBERED = 4096
#: key names remembered as naming a secret or not (past it, each is looked at anew)
NAMES_REMEMBERED = 1024
#: characters of a keyword's line looked at before and after it
KEYWORD_BEFORE, KEYWORD_AFTER = 64, 256
#: a name holding one of the keyword detector's words
_NAME = re.compile("|".join(DENYLIST))
#: such a name assigned a value (``API_KEY=...``, ``"password": "..."``, ``secret := ...``): its opening
#: quote, the value, and the character after it. detect-secrets' own keyword patterns backtrack: over a
#: prompt's long lines they cost milliseconds, so its word list is used in one linear pattern of this module's
_ASSIGNMENT = re.compile(
    "(?:" + _NAME.pattern + r")[\w.-]*['\"\]]{0,2}\s*(?::=|=>|==?|:)\s*(['\"`]?)"
    r"([^\s'\"`,;()\[\]{}<>]{" + str(MIN_KEYWORD_VALUE) + r",})(.?)"
)
#: a private key is redacted from its header to its footer (the detector names only the header)
_PEM = re.compile(
    r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----.*?(?:-----END[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----|\Z)", re.S
)


@dataclass(frozen=True, slots=True)
class Found:
    """A secret found: its kind (the detector's name) and where (``messages[2].content``); never its value."""

    kind: str
    where: str


class Detector:
    """The detectors, made once per process (compiled patterns), and the hashes of long texts found clean:
    an agent sends its whole conversation again every turn, and a text seen clean needs no second scan
    (Python's string hash is keyed per process: a collision cannot be crafted from outside)."""

    def __init__(self, remember: int = CLEAN_REMEMBERED) -> None:
        self._services = tuple((cls(), gate) for cls, gate in SERVICES.items())
        self._clean: OrderedDict[int, None] = OrderedDict()
        self._names: dict[str, bool] = {}  # a key's name: whether it names a secret
        self._remember = remember

    def find(self, text: str) -> list[tuple[str, str]]:
        """(kind, the secret's text) for each secret in ``text``."""
        if len(text) < CLEAN_MIN_LENGTH:
            return list(self._find(text))
        key = hash(text)
        if key in self._clean:
            self._clean.move_to_end(key)
            return []
        hits = list(self._find(text))
        if not hits:
            self._clean[key] = None
            if len(self._clean) > self._remember:
                self._clean.popitem(last=False)
        return hits

    def _find(self, text: str) -> Iterator[tuple[str, str]]:
        lowered = text.lower()
        words = _words(lowered)
        tokens = _TOKEN_RUN.search(lowered) is not None
        if not words and not tokens:  # most prose: no word any detector needs, no token-like run
            return
        present = {word for _, word in words}
        for plugin, gate in self._services:
            if (gate and present.isdisjoint(gate)) or (not gate and not tokens):
                continue
            for regex in plugin.denylist:
                # the whole match: a pattern's group may be a token's prefix alone (GitHub's ``ghp``)
                for match in regex.finditer(text):
                    yield plugin.secret_type, self._extent(plugin, text, match)
        for window, low in _keyword_windows(text, lowered, words):
            for match in _ASSIGNMENT.finditer(low):
                value = window[match.start(2) : match.end(2)]
                if _literal(match, value) and _random_looking(value, window):
                    yield KEYWORD, value

    def named(self, name: str, value: str) -> bool:
        """Whether ``value``, a JSON object's string under the key ``name`` (``{"password": "..."}``), is a
        secret by its name: a name of the keyword detector's, and a value that looks random."""
        secretly = self._names.get(name)
        if secretly is None:
            secretly = _NAME.search(name.lower()) is not None
            if len(self._names) < NAMES_REMEMBERED:  # the keys of requests are few (role, content, ...)
                self._names[name] = secretly
        return secretly and _random_looking(value, f"{name}: {value}")

    @staticmethod
    def _extent(plugin: RegexBasedDetector, text: str, match: re.Match[str]) -> str:
        if isinstance(plugin, PrivateKeyDetector):  # the block whose header this is (a text may hold several)
            block = _PEM.search(text, text.rfind("\n", 0, match.start()) + 1)
            return block.group(0) if block else match.group(0)
        return match.group(0)


def _words(lowered: str) -> list[tuple[int, str]]:
    """(position, word) of every gate and keyword word in ``lowered``, overlapping ones included (each search
    starts one character after the last match: ``keyJ...`` holds ``key`` and a JWT's ``eyj``)."""
    found, search, pos = [], _WORDS.search, 0
    while (match := search(lowered, pos)) is not None:
        found.append((match.start(), match.group()))
        pos = match.start() + 1
    return found


def _keyword_windows(text: str, lowered: str, words: list[tuple[int, str]]) -> Iterator[tuple[str, str]]:
    """The stretch of its line around each keyword (and its lowercase): an assignment's value lies right
    after its name, and a pattern run over a whole long line costs with its length. ``words``: where the
    gate and keyword words are in ``lowered``."""
    if len(lowered) != len(text):  # a character whose lowercase is longer: positions would not line up
        lowered = text
        hits = sorted(pos for word in KEYWORD_GATE for pos in _positions(lowered, word))
    else:
        hits = [at for at, word in words if word in KEYWORD_GATE]
    end = -1
    for pos in hits:
        if pos < end:
            continue
        start = max(lowered.rfind("\n", 0, pos) + 1, pos - KEYWORD_BEFORE)
        line_end = lowered.find("\n", pos)
        end = min(len(text) if line_end < 0 else line_end, pos + KEYWORD_AFTER)
        yield text[start:end], lowered[start:end]


def _positions(text: str, word: str) -> Iterator[int]:
    pos = text.find(word)
    while pos >= 0:
        yield pos
        pos = text.find(word, pos + 1)


def _literal(match: re.Match[str], value: str) -> bool:
    """Whether an assignment's value is written out: quoted, or a bare token that is no expression (an
    attribute, a call, a subscript: ``settings.SECRET_KEY``, ``hashlib.sha256(...)``) and, a bare name,
    holds more than letters (``apiKey = userApiKey`` names a variable; ``PASSWORD=Zx9kq2LmP0vT`` in an env file
    is a value)."""
    if match.group(1):
        return True
    if "." in value or match.group(3) in ("(", "["):
        return False
    return not value.replace("_", "").isalpha()


def _random_looking(value: str, line: str) -> bool:
    if len(value) < MIN_KEYWORD_VALUE or any(c.isspace() for c in value):
        return False
    if sum((any(c.islower() for c in value), any(c.isupper() for c in value), any(c.isdigit() for c in value))) < 2:
        return False  # one kind of character: a word, a name, a number
    if heuristic.is_templated_secret(value) or heuristic.is_sequential_string(value):
        return False
    if heuristic.is_prefixed_with_dollar_sign(value) or heuristic.is_likely_id_string(value, line):
        return False
    return _entropy(value) >= MIN_ENTROPY


def _entropy(text: str) -> float:
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


#: a place in a request body: its keys and list indexes from the top (``("messages", 2, "content")``)
Where = tuple[str | int, ...]


def _joined(where: Where) -> str:
    """``messages[2].content``: a place as the refusal and the audit name it."""
    out = str(where[0]) if where else ""
    for part in where[1:]:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


class Scan:
    """One request's scan: what was found, and (with ``redact``) the prompts rewritten in place, each secret
    replaced by ``[REDACTED:<kind>]``. A tool call's arguments given as JSON text are scanned as the JSON they
    hold (its strings, and its keys), and rewritten as JSON: a secret ends where its string does."""

    def __init__(self, detector: Detector, redact: bool) -> None:
        self.detector, self.redact = detector, redact
        self.found: list[Found] = []

    def body(self, body: dict[str, Any], keys: tuple[str, ...] = PROMPT_KEYS) -> list[Found]:
        for key in keys:
            if key in body:
                item = body[key]
                scanned = self._entry(key, item, (key,), False)
                if scanned is not item:
                    body[key] = scanned
        return self.found

    def value(self, node: Any, where: str | Where, keys: bool = False) -> Any:
        """``node`` scanned (strings, and the strings in lists and objects, at any depth; with ``keys`` the
        objects' keys too); its redacted copy when redacting and something was found, else itself. ``where``:
        its place, as a path (its parts are joined only for a secret found there)."""
        path = (where,) if isinstance(where, str) else where
        if isinstance(node, str):
            return self._text(node, path) if len(node) >= MIN_LENGTH else node
        if isinstance(node, list):
            for i, item in enumerate(node):
                scanned = self.value(item, (*path, i), keys)
                if scanned is not item:
                    node[i] = scanned
        elif isinstance(node, dict):
            return self._object(node, path, keys)
        return node

    def _object(self, node: dict[str, Any], where: Where, keys: bool) -> dict[str, Any]:
        renamed: dict[str, str] = {}
        for key, item in node.items():
            name = self._text(key, where, always=True) if keys and len(key) >= MIN_LENGTH else key
            if name != key:
                renamed[key] = name
            scanned = self._entry(key, item, (*where, name), keys)
            if scanned is not item:
                node[key] = scanned
        if renamed and self.redact:
            return {renamed.get(key, key): item for key, item in node.items()}
        return node

    def _entry(self, key: str, item: Any, where: Where, keys: bool) -> Any:
        if key in ARGUMENTS and isinstance(item, dict):
            return self.value(item, where, keys=True)
        if not isinstance(item, str) or len(item) < MIN_LENGTH:
            return self.value(item, where, keys)
        if key == "arguments":
            return self._json_text(item, where)
        return self._text(item, where, named=self.detector.named(key, item))

    def _json_text(self, text: str, where: Where) -> str:
        try:
            doc = jsonx.loads_exact(text.encode())
        except (ValueError, UnicodeEncodeError):  # not JSON (a lone surrogate cannot even be encoded)
            return self._text(text, where)
        before = len(self.found)
        doc = self.value(doc, where, keys=True)
        if self.redact and len(self.found) > before:
            return jsonx.dumps(doc).decode()
        return text

    def _text(self, text: str, where: Where, named: bool = False, always: bool = False) -> str:
        """``text`` with its secrets replaced when redacting (or ``always``: a key's name, which also names
        where the values under it are); ``named``: the whole text is a secret by the name it is given."""
        hits = self.detector.find(text)
        if named:
            hits.append((KEYWORD, text))
        if not hits:
            return text
        place = _joined(where)
        for kind in dict.fromkeys(kind for kind, _ in hits):
            self.found.append(Found(kind, place))
        if self.redact or always:
            for kind, value in sorted(hits, key=lambda hit: -len(hit[1])):  # a longer secret first: it may hold one
                text = text.replace(value, f"[REDACTED:{kind}]")
        return text
