"""Integer index expressions for kernels: linear sums of ranged atoms, simplified as they are built.

All values are non-negative indices, so C's truncating `/` and `%` equal floor division and modulo here.
"""

from __future__ import annotations


class Atom:
    """A non-linear leaf of an index expression with an inclusive range [lo, hi]."""

    __slots__ = ("key", "lo", "hi", "text")

    def __init__(self, key: tuple, lo: int, hi: int, text: str):
        self.key, self.lo, self.hi, self.text = key, lo, hi, text

    def __eq__(self, other):
        return isinstance(other, Atom) and self.key == other.key

    def __hash__(self):
        return hash(self.key)


class Lin:
    """sum(coef * atom) + const, immutable; the only index arithmetic kernels need."""

    __slots__ = ("terms", "const")

    def __init__(self, terms: dict | None = None, const: int = 0):
        self.terms = {a: c for a, c in (terms or {}).items() if c != 0}
        self.const = const

    @staticmethod
    def var(name: str, size: int) -> Lin:
        """A loop or work-item variable taking values 0..size-1."""
        return Lin({Atom(("v", name), 0, size - 1, name): 1}) if size > 1 else Lin()

    @property
    def lo(self) -> int:
        return self.const + sum(c * (a.lo if c > 0 else a.hi) for a, c in self.terms.items())

    @property
    def hi(self) -> int:
        return self.const + sum(c * (a.hi if c > 0 else a.lo) for a, c in self.terms.items())

    def __add__(self, o) -> Lin:
        if isinstance(o, int):
            return Lin(self.terms, self.const + o)
        t = dict(self.terms)
        for a, c in o.terms.items():
            t[a] = t.get(a, 0) + c
        out = Lin(t, self.const + o.const)
        return _recombine(out) if any(a.key[0] == "mod" for a in out.terms) else out

    def __mul__(self, k: int) -> Lin:
        return Lin({a: c * k for a, c in self.terms.items()}, self.const * k)

    def __neg__(self) -> Lin:
        return self * -1

    def __sub__(self, o) -> Lin:
        return self + (-o if isinstance(o, Lin) else -o)

    def floordiv(self, m: int) -> Lin:
        """self // m, pulling out the terms divisible by m."""
        if m == 1:
            return self
        if self.lo >= 0 and self.hi < m:
            return Lin()
        whole = Lin({a: c // m for a, c in self.terms.items() if c % m == 0})
        rest = Lin({a: c for a, c in self.terms.items() if c % m != 0})
        q, r = divmod(self.const, m)  # floor semantics, so the split is exact for any sign of the constant
        rest = rest + r
        if rest.lo >= 0:
            if rest.hi < m:
                return whole + q
            split = rest._split_common(m)
            if split is not None:  # (g*big + small)//m == big//(m/g) when 0 <= small < g
                big, g = split
                return whole + q + big.floordiv(m // g)
            return whole + q + rest._atom_div(m)
        # terms that can go negative: keep the whole sum in one division (C truncation equals floor
        # wherever the index is valid, i.e. non-negative)
        return self._atom_div(m)

    def mod(self, m: int) -> Lin:
        """self % m, dropping the terms divisible by m."""
        if m == 1:
            return Lin()
        rest = Lin({a: c % m for a, c in self.terms.items() if c % m != 0}, self.const % m)
        if rest.lo >= 0 and rest.hi < m:
            return rest
        split = rest._split_common(m) if rest.lo >= 0 else None
        if split is not None:  # (g*big + small) % m == (big % (m/g))*g + small when 0 <= small < g
            big, g = split
            return big.mod(m // g) * g + (rest - big * g)
        return rest._atom_mod(m)

    def _split_common(self, m: int) -> tuple[Lin, int] | None:
        """(big, g) with self == big*g + small, g | m, g > 1 and 0 <= small < g; None if no such split."""
        from math import gcd

        for c in sorted({abs(c) for c in self.terms.values()}, reverse=True):
            g = gcd(m, c)
            if g <= 1:
                continue
            big = Lin({a: d // g for a, d in self.terms.items() if d % g == 0})
            small = self - big * g
            if small.lo >= 0 and small.hi < g:
                return big, g
        return None

    def _atom_div(self, m: int) -> Lin:
        if len(self.terms) == 1 and self.const == 0:
            ((a, c),) = self.terms.items()
            if c == 1 and a.key[0] == "div":  # (x//a)//b == x//(a*b)
                return a.key[1]._atom_div(a.key[2] * m)
        return Lin({Atom(("div", self, m), self.lo // m, self.hi // m, f"({self.render()}/{m})"): 1})

    def _atom_mod(self, m: int) -> Lin:
        return Lin({Atom(("mod", self, m), 0, min(m - 1, self.hi), f"({self.render()}%{m})"): 1})

    def coefficient(self, name: str) -> int:
        """The coefficient of variable `name` as a plain term: 0 where it is absent or only inside a division
        or remainder."""
        return self.terms.get(Atom(("v", name), 0, 0, name), 0)

    def without(self, name: str) -> Lin:
        """The expression less its plain term in variable `name` (uses inside divisions stay)."""
        return Lin({a: c for a, c in self.terms.items() if a.key != ("v", name)}, self.const)

    def variables(self) -> set[str]:
        """Names of the variables the expression uses, inside divisions and remainders too."""
        out: set[str] = set()
        for a in self.terms:
            out |= {a.key[1]} if a.key[0] == "v" else a.key[1].variables()
        return out

    def unit_variables(self) -> set[str]:
        """Variables added with coefficient 1 somewhere in the expression (a stride-1 use), at any depth."""
        out: set[str] = set()
        for a, c in self.terms.items():
            if a.key[0] == "v":
                out |= {a.key[1]} if c == 1 else set()
            else:
                out |= a.key[1].unit_variables()
        return out

    @property
    def is_affine(self) -> bool:
        """True when the expression has no division or remainder: a plain strided index."""
        return all(a.key[0] == "v" for a in self.terms)

    def __eq__(self, other):
        return isinstance(other, Lin) and self.const == other.const and self.terms == other.terms

    def __hash__(self):
        return hash((frozenset(self.terms.items()), self.const))

    def render(self) -> str:
        """OpenCL C source of the expression."""
        parts = [
            a.text if c == 1 else f"{a.text}*{c}"
            for a, c in sorted(self.terms.items(), key=lambda t: t[0].text)
        ]
        if self.const or not parts:
            parts.append(str(self.const))
        return parts[0] if len(parts) == 1 else "(" + "+".join(parts) + ")"

    def __repr__(self):
        return self.render()


def _recombine(x: Lin) -> Lin:
    """Fold c*(y//a)*a + c*(y%a) back into c*y, so views that split and re-merge an index cancel out."""
    for atom, c in x.terms.items():
        if atom.key[0] != "mod":
            continue
        y, a = atom.key[1], atom.key[2]
        partner = y._atom_div(a)
        ((pa, pc),) = partner.terms.items()
        if pc == 1 and x.terms.get(pa) == c * a:
            rest = Lin({b: d for b, d in x.terms.items() if b != atom and b != pa}, x.const)
            return rest + y * c
    return x


def in_range(x: Lin, lo: int, hi: int) -> list[str]:
    """Conditions (C source) for lo <= x < hi, empty when always true, ['0'] when never."""
    if x.lo >= lo and x.hi < hi:
        return []
    if x.hi < lo or x.lo >= hi:
        return ["0"]
    conds = []
    if x.lo < lo:
        conds.append(f"({x.render()}>={lo})")
    if x.hi >= hi:
        conds.append(f"({x.render()}<{hi})")
    return conds
