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

    def to_config(self) -> dict:
        """The reviewed draft as a strategy configuration (factor-language conditions)."""
        if not self.ok:
            raise DraftError("draft has clauses that were not understood: " + "; ".join(self.unparsed))
        cfg = {k: getattr(self, k) for k in (
            "entry_long", "exit_long", "entry_short", "exit_short", "position_pct",
            "stop_loss_pct", "stop_loss_points", "take_profit_pct", "trailing_stop_pct")}
        cfg["symbols"] = list(self.symbols)
        return {k: v for k, v in cfg.items() if v is not None}

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{k}</td><td><code>{v}</code></td></tr>" for k, v in self._fields())
        bad = "".join(f"<li>{u}</li>" for u in self.unparsed)
        warn = f"<p style='color:#c33'><b>Not understood (nothing was guessed):</b></p><ul>{bad}</ul>" if bad else ""
        return f"<h4>Strategy draft (review before backtesting)</h4><table>{rows}</table>{warn}"

    def _fields(self):
        for k in ("symbols", "entry_long", "exit_long", "entry_short", "exit_short", "position_pct",
                  "stop_loss_pct", "stop_loss_points", "take_profit_pct", "trailing_stop_pct"):
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


# indicator phrases -> factor-language text (ordered: specific first)
_INDICATORS: list[tuple[re.Pattern, callable]] = [
    (re.compile(rf"{_PERIOD} (?:simple )?moving average"), lambda m: f"mavg(close, {m[1]})"),
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
    (re.compile(rf"{_PERIOD} high"), lambda m: f"mmax(high, {m[1]})"),
    (re.compile(rf"{_PERIOD} low"), lambda m: f"mmin(low, {m[1]})"),
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
_SIZE = re.compile(rf"^(?:with )?(?:a )?{_NUM} ?% (?:position|of equity|of capital)(?: per trade| each trade| per position)?$|"
                   rf"^(?:risk|size|position size|allocate) {_NUM} ?%(?: of equity)?(?: per trade)?$")
_STOP = re.compile(rf"^(?:with )?(?:a )?(?P<trail>trailing )?stop[- ]?loss(?: of| at)? {_NUM} ?(?P<unit>%|points?|pips?|percent)$|"
                   rf"^(?:with )?(?:a )?trailing stop(?: of| at)? {_NUM} ?%$")
_TP = re.compile(rf"^(?:with )?(?:a )?take[- ]profit(?: of| at)? {_NUM} ?%$")


def _indicator(phrase: str, symbols: list[str]) -> str | None:
    phrase = phrase.strip().strip(".").strip()
    phrase = re.sub(r"^the ", "", phrase)
    m = re.search(r" of ([a-z0-9./]+)$", phrase)
    if m and m[1] not in {"close", "price"}:
        symbols.append(_symbol(m[1]))
        phrase = phrase[: m.start()]
    for pat, build in _INDICATORS:
        mm = pat.search(phrase)
        if mm and (mm.group(0).strip() == phrase or pat.pattern.startswith("^") or len(mm.group(0)) >= len(phrase) - 4):
            return build(mm)
    return None


def _condition(cond: str, symbols: list[str]) -> tuple[str, str | None] | None:
    """Return (expression, reverse-cross expression or None)."""
    m = _CROSS.match(cond)
    if m:
        a, b = _indicator(m["a"], symbols), _indicator(m["b"], symbols)
        if a is None or b is None:
            return None
        up = m["dir"] in ("above", "over")
        return (f"cross({a}, {b}) == {1 if up else -1}", f"cross({a}, {b}) == {-1 if up else 1}")
    m = _COMPARE.match(cond)
    if m:
        a, b = _indicator(m["a"], symbols), _indicator(m["b"], symbols)
        if a is None or b is None:
            return None
        op = ">" if m["op"] in ("above", "over", "greater than", "exceeds") else "<"
        return (f"{a} {op} {b}", None)
    return None


def draft_strategy(text: str) -> StrategyDraft:
    """Draft a strategy configuration from a plain-English rule.

    Parameters
    ----------
    text : str
        Clauses separated by commas, semicolons or "and then"; e.g. entry and exit rules,
        position size, stop-loss, take-profit.

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
    clauses = [c.strip() for c in re.split(r"[;,]|\band then\b|\.\s", text.lower().strip().rstrip(".")) if c.strip()]
    symbols: list[str] = []
    out: dict = {}
    understood, unparsed = [], []
    last_cross_reverse: str | None = None
    for clause in clauses:
        clause = re.sub(r"^(?:and|then) ", "", clause).strip()
        m = _ACTION.match(clause)
        if m:
            if m["sym"] and m["sym"].upper() not in _STOPWORDS and m["sym"] not in {"it", "the"}:
                symbols.append(_symbol(m["sym"]))
            res = _condition(m["cond"], symbols)
            if res is None:
                unparsed.append(clause)
                continue
            expr, reverse = res
            act = m["act"]
            key = {"buy": "entry_long", "go long": "entry_long", "long": "entry_long",
                   "sell short": "entry_short", "go short": "entry_short", "short": "entry_short",
                   "cover": "exit_short"}.get(act, "exit_long")
            out[key] = expr
            last_cross_reverse = reverse or last_cross_reverse
            understood.append(clause)
            continue
        m = _REVERSE.match(clause)
        if m and last_cross_reverse:
            out["exit_short" if m["act"] in ("buy", "cover") else "exit_long"] = last_cross_reverse
            understood.append(clause)
            continue
        m = _SIZE.match(clause)
        if m:
            out["position_pct"] = float(m[1] or m[2]) / 100.0
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
    if out.get("position_pct") is not None and not 0 < out["position_pct"] <= 1:
        unparsed.append(f"position size {out['position_pct']:.0%} is outside (0%, 100%]")
        out.pop("position_pct")
    return StrategyDraft(text=text, symbols=tuple(dict.fromkeys(symbols)), understood=tuple(understood),
                         unparsed=tuple(unparsed), **out)
