"""Natural-language strategy drafts, offline.

``draft_strategy(text)`` turns a plain-English rule such as

    "buy when the 5-day moving average of EURUSD crosses above the 20-day moving average,
     sell on the reverse cross, 2% position per trade, stop-loss at 100 points"

into a :class:`StrategyDraft` whose conditions are written in the platform's factor language.
It is a small deterministic grammar over clauses, not a language model: every clause must
match a known pattern, and anything that does not is reported in ``draft.unparsed`` (and
``draft.ok`` is False) rather than guessed. A draft is for review; ``draft.to_config()`` is
what a backtest takes once the user accepts it.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from pyplatform.domain.instruments import PRICE_DECIMALS, AssetClass, asset_class_of

__all__ = ["StrategyDraft", "DraftError", "draft_strategy"]

_CCY = {"USD", "EUR", "GBP", "JPY", "CHF", "AUD", "NZD", "CAD", "CNH", "HKD", "SGD", "SEK", "NOK"}
_NUM = r"(\d+(?:\.\d+)?)"
_PERIOD = r"(\d+)[- ](?:day|bar|period|minute|min|hour|week)s?"
_STOPWORDS = {"BUY", "SELL", "RSI", "MACD", "EMA", "SMA", "MA", "ATR", "AND", "THE", "WHEN", "VWAP"}


class DraftError(ValueError):
    """Raised when a rule has no clause that can be understood at all."""


@dataclass(frozen=True)
class StrategyDraft:
    """A strategy configuration drafted from text, awaiting the user's review."""

    text: str
    symbols: tuple[str, ...] = ()
    entry_long: str | None = None
    exit_long: str | None = None
    entry_short: str | None = None
    exit_short: str | None = None
    position_pct: float | None = None
    risk_pct: float | None = None
    stop_loss_pct: float | None = None
    stop_loss_points: float | None = None
    take_profit_pct: float | None = None
    trailing_stop_pct: float | None = None
    understood: tuple[str, ...] = ()
    unparsed: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """True when every clause was understood and there is at least one entry rule."""
        return not self.unparsed and bool(self.entry_long or self.entry_short)

    def stop_loss_distance(self, symbol: str) -> float | None:
        """The stop-loss as a price distance: a point is the symbol's smallest price step."""
        if self.stop_loss_points is None:
            return None
        return self.stop_loss_points * 10.0 ** -PRICE_DECIMALS[asset_class_of(symbol)]

    def to_config(self, name: str = "draft") -> dict:
        """The reviewed draft as a ``kind: "rule"`` strategy configuration.

        ``pp.run_backtest(draft.to_config())`` runs it (and so does anything that builds a
        strategy from a config: the live node, the app). Conditions are in ``rules``, sizing
        and stops in ``params`` (0 = off).

        Raises
        ------
        DraftError
            While any clause is not understood, or no entry rule was found.
        """
        if not self.ok:
            why = "; ".join(self.unparsed) if self.unparsed else "no entry rule (buy/short ... when ...)"
            raise DraftError("draft has clauses that were not understood: " + why)
        rules = {k: getattr(self, k) for k in ("entry_long", "exit_long", "entry_short", "exit_short")
                 if getattr(self, k)}
        params = {k: float(getattr(self, k)) for k in (
            "position_pct", "risk_pct", "stop_loss_pct", "stop_loss_points", "take_profit_pct",
            "trailing_stop_pct") if getattr(self, k) is not None}
        cfg = {"kind": "rule", "name": name, "rules": rules, "params": params}
        if self.symbols:
            cfg["symbols"] = list(self.symbols)
        return cfg

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{k}</td><td><code>{v}</code></td></tr>" for k, v in self._fields())
        bad = "".join(f"<li>{u}</li>" for u in self.unparsed)
        warn = f"<p style='color:#c33'><b>Not understood (nothing was guessed):</b></p><ul>{bad}</ul>" if bad else ""
        return f"<h4>Strategy draft (review before backtesting)</h4><table>{rows}</table>{warn}"

    def _fields(self):
        for k in ("symbols", "entry_long", "exit_long", "entry_short", "exit_short", "position_pct",
                  "risk_pct", "stop_loss_pct", "stop_loss_points", "take_profit_pct", "trailing_stop_pct"):
            v = getattr(self, k)
            if v not in (None, ()):
                yield k, v

    def __str__(self) -> str:
        lines = [f"{k}: {v}" for k, v in self._fields()]
        lines += [f"NOT UNDERSTOOD: {u}" for u in self.unparsed]
        return "\n".join(lines)


def _symbol(word: str) -> str:
    w = word.upper().replace("/", "")
    if "." in w:
        asset_class_of(w)  # validates the region
        return w
    if len(w) == 6 and w[:3] in _CCY and w[3:] in _CCY:
        return f"{w}.GB"
    if w.endswith("USDT") or w in {"BTC", "ETH", "SOL"}:
        return f"{w if w.endswith('USDT') else w + 'USDT'}.BA"
    return f"{w}.US"


def _known_symbol(word: str, known: list[str] | None) -> tuple[str | None, str | None]:
    """(symbol, None) or (None, why): with ``known`` symbols, an unknown one is refused with
    the nearest known ones instead of being invented."""
    try:
        sym = _symbol(word)
    except (ValueError, KeyError):
        return None, f"symbol {word.upper()!r} has an unknown region suffix"
    if known is None or sym in known:
        return sym, None
    code = word.upper().split(".")[0]
    same = [k for k in known if k.split(".")[0] == code]
    if len(same) == 1:
        return same[0], None
    near = same or difflib.get_close_matches(sym, known, n=3, cutoff=0.5)
    return None, f"unknown symbol {sym!r}" + (f" (nearest known: {', '.join(near)})" if near else
                                             f" ({len(known)} symbols known)")


# indicator phrases -> factor-language text (ordered: specific first)
_INDICATORS: list[tuple[re.Pattern, callable]] = [
    (re.compile(rf"{_PERIOD} (?:simple )?(?:moving average|ma|sma)"), lambda m: f"mavg(close, {m[1]})"),
    (re.compile(rf"{_PERIOD} (?:ema|exponential moving average)"), lambda m: f"ema(close, {m[1]})"),
    (re.compile(rf"(?:ema|exponential moving average) ?\((\d+)\)"), lambda m: f"ema(close, {m[1]})"),
    (re.compile(rf"(?:ma|sma|moving average) ?\((\d+)\)"), lambda m: f"mavg(close, {m[1]})"),
    (re.compile(rf"{_PERIOD} rsi"), lambda m: f"rsi(close, {m[1]})"),
    (re.compile(r"rsi ?\((\d+)\)"), lambda m: f"rsi(close, {m[1]})"),
    (re.compile(r"\brsi\b"), lambda m: "rsi(close, 14)"),
    (re.compile(r"macd signal(?: line)?"), lambda m: "macdSignal(close, 12, 26, 9)"),
    (re.compile(r"(?:the )?signal line"), lambda m: "macdSignal(close, 12, 26, 9)"),
    (re.compile(r"\bmacd(?: line)?\b"), lambda m: "macd(close, 12, 26, 9)"),
    (re.compile(r"upper bollinger band"), lambda m: "bbUpper(close, 20, 2)"),
    (re.compile(r"lower bollinger band"), lambda m: "bbLower(close, 20, 2)"),
    # a level such as the 20-day high is the one before this bar: a window that includes the
    # current bar can never be exceeded by its own close (a breakout would never fire)
    (re.compile(rf"(?:previous |prior )?{_PERIOD} (?:high|highest high)"), lambda m: f"move(mmax(high, {m[1]}), 1)"),
    (re.compile(rf"(?:previous |prior )?{_PERIOD} (?:low|lowest low)"), lambda m: f"move(mmin(low, {m[1]}), 1)"),
    (re.compile(rf"{_PERIOD} (?:momentum|return)"), lambda m: f"(close / move(close, {m[1]}) - 1)"),
    (re.compile(rf"{_PERIOD} z-?score"), lambda m: f"zscore(close, {m[1]})"),
    (re.compile(r"z-?score"), lambda m: "zscore(close, 20)"),
    (re.compile(r"\b(?:the )?(?:price|close|closing price|last price)\b"), lambda m: "close"),
    (re.compile(rf"^{_NUM}$"), lambda m: m[1]),
]

_CROSS = re.compile(r"^(?P<a>.+?) crosses (?P<dir>above|over|below|under) (?P<b>.+)$")
_COMPARE = re.compile(r"^(?P<a>.+?) (?:is |goes |rises |falls |drops |moves )?"
                      r"(?P<op>above|over|below|under|greater than|less than|exceeds)\s+(?P<b>.+)$")
_ACTION = re.compile(r"^(?P<act>buy|go long|long|sell short|go short|short|sell|exit|close(?: the)? position|cover)"
                     r"(?: (?P<sym>[a-z0-9./]+))? (?:when|if|once) (?P<cond>.+)$")
_REVERSE = re.compile(r"^(?P<act>sell|exit|close(?: the)? position|buy|cover)(?: it)? on (?:the )?(?:reverse|opposite) cross(?:over)?$")
_LEAD = r"^(?:use |using |with |set |place |put |take |size |trade )?(?:a |an )?"
_SIZE = re.compile(rf"{_LEAD}{_NUM} ?% (?:position|of equity|of capital|of the account)(?: size)?"
                   rf"(?: (?:per|for each|for every|on each|each|a) (?:trade|position|entry))?$")
_RISK = re.compile(rf"^(?:risk|risking) {_NUM} ?%(?: of (?:equity|capital|the account))?"
                   rf"(?: (?:per|for each|on each|each|a) (?:trade|position|entry))?$")
_STOP = re.compile(rf"{_LEAD}(?P<trail>trailing )?stop[- ]?loss(?: of| at| to)? {_NUM} ?(?P<unit>%|points?|pips?|percent)$|"
                   rf"{_LEAD}trailing stop(?: of| at)? {_NUM} ?%$")
_TP = re.compile(rf"{_LEAD}take[- ]profit(?: of| at| to)? {_NUM} ?%$")
# condition first, action second: "when X, buy" / "if X then sell"
_WHEN_FIRST = re.compile(r"^(?:when|if|once|whenever) (?P<cond>.+?)(?:,| then)? (?P<act>buy|go long|sell short|go short|"
                         r"short|sell|exit|close(?: the)? position|cover)(?: (?P<sym>[a-z0-9./]+))?$")
_BARE_ACTION = re.compile(r"^(?:then )?(?P<act>buy|go long|sell short|go short|short|sell|exit|close(?: the)? position|"
                          r"cover)(?: (?P<sym>[a-z0-9./]+))?$")
# "it crosses below" / "it crosses back below": the previous cross, reversed
_IT_CROSS = re.compile(r"^(?:it|the (?:fast|short) (?:one|average|ma)) crosses (?:back )?(?P<dir>above|over|below|under)"
                       r"(?: (?:it|the (?:slow|long) (?:one|average|ma)))?$")
_ACTION_KEYS = {"buy": "entry_long", "go long": "entry_long", "long": "entry_long",
                "sell short": "entry_short", "go short": "entry_short", "short": "entry_short",
                "cover": "exit_short"}


def _indicator(phrase: str, symbols: list[str]) -> str | None:
    """Factor-language text for an indicator phrase; symbol words it names go to ``symbols``."""
    phrase = phrase.strip().strip(".").strip()
    phrase = re.sub(r"^(?:the|its|their) ", "", phrase)
    m = re.match(r"^([a-z0-9./]+)'s ", phrase)  # "eurusd's 5-day ma"
    if m:
        symbols.append(m[1])
        phrase = phrase[m.end():]
    m = re.search(r" (?:of|on|for) ([a-z0-9./]+)$", phrase)
    if m and m[1] not in {"close", "price"}:
        symbols.append(m[1])
        phrase = phrase[: m.start()]
    for pat, build in _INDICATORS:
        mm = pat.search(phrase)
        if mm and (mm.group(0).strip() == phrase or pat.pattern.startswith("^") or len(mm.group(0)) >= len(phrase) - 4):
            return build(mm)
    return None


def _condition(cond: str, symbols: list[str], last_cross: tuple[str, str] | None = None
               ) -> tuple[str, str | None, tuple[str, str] | None] | None:
    """(expression, reverse-cross expression or None, the cross's (a, b) or None)."""
    m = _IT_CROSS.match(cond)
    if m and last_cross:
        a, b = last_cross
        up = m["dir"] in ("above", "over")
        return (f"cross({a}, {b}) == {1 if up else -1}", f"cross({a}, {b}) == {-1 if up else 1}", (a, b))
    m = _CROSS.match(cond)
    if m:
        a, b = _indicator(m["a"], symbols), _indicator(m["b"], symbols)
        if a is None or b is None:
            return None
        up = m["dir"] in ("above", "over")
        return (f"cross({a}, {b}) == {1 if up else -1}", f"cross({a}, {b}) == {-1 if up else 1}", (a, b))
    m = _COMPARE.match(cond)
    if m:
        a, b = _indicator(m["a"], symbols), _indicator(m["b"], symbols)
        if a is None or b is None:
            return None
        op = ">" if m["op"] in ("above", "over", "greater than", "exceeds") else "<"
        return (f"{a} {op} {b}", None, None)
    return None


def _clauses(text: str) -> list[str]:
    """Split into clauses: commas, semicolons, sentences, "and then", and an "and" that starts
    a new instruction (conditions keep their own "and"); a leading "when X," is joined to the
    bare action that follows it ("when X, buy")."""
    t = text.lower().strip().rstrip(".")
    t = re.sub(r"\s+", " ", t)
    parts = re.split(r"[;,]|\band then\b|\.\s|\band (?=(?:set|use|place|put|take|risk|buy|sell|exit|cover|short|"
                     r"go long|go short|close|with|stop|trailing)\b)", t)
    parts = [re.sub(r"^(?:and|then|also) ", "", c.strip()).strip() for c in parts if c and c.strip()]
    out: list[str] = []
    for c in parts:
        if out and _BARE_ACTION.match(c) and re.match(r"^(?:when|if|once|whenever) ", out[-1]):
            out[-1] = f"{out[-1]} {c}"
        else:
            out.append(c)
    return out


def draft_strategy(text: str, known_symbols=None) -> StrategyDraft:
    """Draft a strategy configuration from a plain-English rule.

    Parameters
    ----------
    text : str
        Clauses separated by commas, semicolons, sentences or "and"; entry and exit rules
        ("buy when X", "when X, buy", "sell on the reverse cross", "when it crosses below,
        sell"), position size ("2% position per trade", "use 2% position for each trade"),
        risk per trade ("risk 1% per trade": equity lost at the stop), stop-loss (points or
        %), trailing stop, take-profit.
    known_symbols : iterable of str, optional
        Symbols that exist (``pp.draft_strategy`` passes the store's): a symbol outside them
        is refused with the nearest known ones instead of being invented.

    Returns
    -------
    StrategyDraft
        Conditions in the factor language; clauses not understood are listed in
        ``unparsed`` and make ``ok`` False. Nothing is guessed.

    Raises
    ------
    DraftError
        If the text is empty.
    """
    if not text or not text.strip():
        raise DraftError("empty strategy description")
    known = None if known_symbols is None else sorted(set(map(str, known_symbols)))
    words: list[str] = []
    out: dict = {}
    understood, unparsed = [], []
    last_cross_reverse: str | None = None
    last_cross: tuple[str, str] | None = None
    for clause in _clauses(text):
        m = _ACTION.match(clause)
        cond = act = sym = None
        if m:
            act, sym, cond = m["act"], m["sym"], m["cond"]
        else:
            m = _WHEN_FIRST.match(clause)
            if m:
                act, sym, cond = m["act"], m["sym"], m["cond"]
        if cond is not None:
            if sym and sym.upper() not in _STOPWORDS and sym not in {"it", "the"}:
                words.append(sym)
            res = _condition(cond, words, last_cross)
            if res is None:
                unparsed.append(clause)
                continue
            expr, reverse, cross = res
            out[_ACTION_KEYS.get(act, "exit_long")] = expr
            last_cross_reverse = reverse or last_cross_reverse
            last_cross = cross or last_cross
            understood.append(clause)
            continue
        m = _REVERSE.match(clause)
        if m and last_cross_reverse:
            out["exit_short" if m["act"] in ("buy", "cover") else "exit_long"] = last_cross_reverse
            understood.append(clause)
            continue
        m = _SIZE.match(clause)
        if m:
            out["position_pct"] = float(m[1]) / 100.0
            understood.append(clause)
            continue
        m = _RISK.match(clause)
        if m:
            out["risk_pct"] = float(m[1]) / 100.0
            understood.append(clause)
            continue
        m = _STOP.match(clause)
        if m:
            if m.group(4) is not None:  # "trailing stop of N%"
                out["trailing_stop_pct"] = float(m.group(4)) / 100.0
            elif m["trail"]:
                out["trailing_stop_pct"] = float(m.group(2)) / 100.0
            elif m["unit"] in ("%", "percent"):
                out["stop_loss_pct"] = float(m.group(2)) / 100.0
            else:
                out["stop_loss_points"] = float(m.group(2))
            understood.append(clause)
            continue
        m = _TP.match(clause)
        if m:
            out["take_profit_pct"] = float(m[1]) / 100.0
            understood.append(clause)
            continue
        unparsed.append(clause)
    for key in ("position_pct", "risk_pct"):
        if out.get(key) is not None and not 0 < out[key] <= 1:
            unparsed.append(f"{key.replace('_pct', '')} size {out[key]:.0%} is outside (0%, 100%]")
            out.pop(key)
    if out.get("risk_pct") is not None and out.get("stop_loss_pct") is None:
        unparsed.append("risk per trade needs a stop-loss in % (the loss at the stop is what is risked)")
    symbols: list[str] = []
    for w in dict.fromkeys(words):
        sym, why = _known_symbol(w, known)
        if why:
            unparsed.append(why)
        elif sym not in symbols:
            symbols.append(sym)
    return StrategyDraft(text=text, symbols=tuple(symbols), understood=tuple(understood),
                         unparsed=tuple(unparsed), **out)
