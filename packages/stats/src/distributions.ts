/**
 * The few distribution functions the tests need, written out so the package has no
 * numeric dependency. Methods: Lanczos / Stirling log-gamma, Numerical Recipes' series
 * and Lentz continued fractions for the regularized incomplete gamma and beta
 * functions, Wichura's AS 241 for the normal quantile. Checked against scipy in
 * test/distributions.test.ts.
 */

const EPS = Number.EPSILON;
const TINY = 1e-300;
const MAX_ITERATIONS = 100_000;
const HALF_LN_2PI = 0.5 * Math.log(2 * Math.PI);

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) - [(x - ½) ln x - x + ½ ln 2π], the Stirling remainder; for x ≥ 10 only. */
function stirlingCorrection(x: number): number {
  const r = 1 / (x * x);
  return (1 / x) * (1 / 12 - r * (1 / 360 - r * (1 / 1260 - r * (1 / 1680 - r / 1188))));
}

/** ln Γ(x) for x > 0. */
export function logGamma(x: number): number {
  if (x >= 10) return (x - 0.5) * Math.log(x) - x + HALF_LN_2PI + stirlingCorrection(x);
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let sum = LANCZOS[0]!;
  for (let i = 1; i < LANCZOS.length; i++) sum += LANCZOS[i]! / (z + i);
  const t = z + 7.5;
  return HALF_LN_2PI + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}

/**
 * ln B(a, b). For a large argument the difference ln Γ(big) - ln Γ(big + small) is taken
 * in closed form: subtracting two log-gammas near 10^8 would lose eight digits, and
 * Welch degrees of freedom reach that size with millions of sessions.
 */
export function logBeta(a: number, b: number): number {
  const big = Math.max(a, b);
  const small = Math.min(a, b);
  if (big < 10) return logGamma(a) + logGamma(b) - logGamma(a + b);
  return (
    logGamma(small) -
    (big - 0.5) * Math.log1p(small / big) -
    small * Math.log(big + small) +
    small +
    stirlingCorrection(big) -
    stirlingCorrection(big + small)
  );
}

// ---------------------------------------------------------------- incomplete gamma

/** ln of x^a e^-x / Γ(a), the prefactor of both incomplete gamma expansions. */
function gammaPrefactor(a: number, x: number): number {
  return a * Math.log(x) - x - logGamma(a);
}

function lowerGammaSeries(a: number, x: number): number {
  let term = 1 / a;
  let sum = term;
  for (let n = 1; n < MAX_ITERATIONS; n++) {
    term *= x / (a + n);
    sum += term;
    if (Math.abs(term) < Math.abs(sum) * EPS) break;
  }
  return sum * Math.exp(gammaPrefactor(a, x));
}

function upperGammaFraction(a: number, x: number): number {
  let b = x + 1 - a;
  let c = 1 / TINY;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < MAX_ITERATIONS; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < TINY) d = TINY;
    c = b + an / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < EPS) break;
  }
  return Math.exp(gammaPrefactor(a, x)) * h;
}

/** Regularized upper incomplete gamma Q(a, x) = Γ(a, x) / Γ(a). */
export function regularizedGammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  if (x < a + 1) return 1 - lowerGammaSeries(a, x);
  return upperGammaFraction(a, x);
}

/** Regularized lower incomplete gamma P(a, x) = γ(a, x) / Γ(a). */
export function regularizedGammaP(a: number, x: number): number {
  if (x <= 0) return 0;
  if (x < a + 1) return lowerGammaSeries(a, x);
  return 1 - upperGammaFraction(a, x);
}

// ----------------------------------------------------------------- incomplete beta

function betaFraction(x: number, a: number, b: number): number {
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < TINY) d = TINY;
  d = 1 / d;
  let h = d;
  for (let m = 1; m < MAX_ITERATIONS; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < EPS) return h;
  }
  return Number.NaN;
}

/**
 * Regularized incomplete beta I_x(a, b), given both x and y = 1 - x so that a caller who
 * knows y more precisely than 1 - x (a tail near 1) loses nothing to cancellation.
 */
export function regularizedBeta(x: number, a: number, b: number, y: number = 1 - x): number {
  if (x <= 0) return 0;
  if (y <= 0) return 1;
  // ln x from y when x is near 1 (and the other way round): log(0.999…) keeps few digits.
  const lnX = x < 0.5 ? Math.log(x) : Math.log1p(-y);
  const lnY = y < 0.5 ? Math.log(y) : Math.log1p(-x);
  const front = Math.exp(a * lnX + b * lnY - logBeta(a, b));
  if (x < (a + 1) / (a + b + 2)) return (front * betaFraction(x, a, b)) / a;
  return 1 - (front * betaFraction(y, b, a)) / b;
}

/**
 * 1 - I_x(a, b) = I_y(b, a) as the power series y^b x^a / (b B(a, b)) Σ_n (a+b)_n / (b+1)_n y^n
 * (a hypergeometric 2F1(a+b, 1; b+1; y)): positive terms in y alone, so well conditioned
 * when y is small and exact. NaN if it has not converged within the limit.
 */
function betaComplementSeries(y: number, a: number, b: number, lnX: number, lnY: number): number {
  let term = 1;
  let sum = 1;
  for (let n = 0; n < MAX_ITERATIONS; n++) {
    term *= ((a + b + n) / (b + 1 + n)) * y;
    sum += term;
    const ratio = ((a + b + n + 1) / (b + 2 + n)) * y;
    // Once the terms shrink geometrically, the rest of the series is below term / (1 - ratio).
    if (ratio < 1 && term < sum * EPS * (1 - ratio)) return (Math.exp(b * lnY + a * lnX - logBeta(a, b)) / b) * sum;
  }
  return Number.NaN;
}

// -------------------------------------------------------------------------- normal

/** Standard normal upper tail P(Z > z). */
export function normalSf(z: number): number {
  if (Number.isNaN(z)) return Number.NaN;
  const q = 0.5 * regularizedGammaQ(0.5, (z * z) / 2);
  return z >= 0 ? q : 1 - q;
}

/** Standard normal CDF P(Z ≤ z). */
export function normalCdf(z: number): number {
  return normalSf(-z);
}

/** Standard normal quantile: Wichura (1988), Algorithm AS 241 (PPND16), ~1e-16 relative. */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) {
    if (p === 0) return -Infinity;
    if (p === 1) return Infinity;
    return Number.NaN;
  }
  const q = p - 0.5;
  if (Math.abs(q) <= 0.425) {
    const r = 0.180625 - q * q;
    return (
      (q *
        (((((((r * 2509.0809287301226727 + 33430.575583588128105) * r + 67265.770927008700853) * r +
          45921.953931549871457) *
          r +
          13731.693765509461125) *
          r +
          1971.5909503065514427) *
          r +
          133.14166789178437745) *
          r +
          3.387132872796366608)) /
      (((((((r * 5226.495278852545925 + 28729.085735721942674) * r + 39307.89580009271061) * r +
        21213.794301586595867) *
        r +
        5394.1960214247511077) *
        r +
        687.1870074920579083) *
        r +
        42.313330701600911252) *
        r +
        1)
    );
  }
  let r = q < 0 ? p : 1 - p;
  r = Math.sqrt(-Math.log(r));
  let value: number;
  if (r <= 5) {
    r -= 1.6;
    value =
      (((((((r * 7.7454501427834140764e-4 + 0.0227238449892691845833) * r + 0.24178072517745061177) * r +
        1.27045825245236838258) *
        r +
        3.64784832476320460504) *
        r +
        5.7694972214606914055) *
        r +
        4.6303378461565452959) *
        r +
        1.42343711074968357734) /
      (((((((r * 1.05075007164441684324e-9 + 5.475938084995344946e-4) * r + 0.0151986665636164571966) * r +
        0.14810397642748007459) *
        r +
        0.68976733498510000455) *
        r +
        1.6763848301838038494) *
        r +
        2.05319162663775882187) *
        r +
        1);
  } else {
    r -= 5;
    value =
      (((((((r * 2.01033439929228813265e-7 + 2.71155556874348757815e-5) * r + 0.0012426609473880784386) * r +
        0.026532189526576123093) *
        r +
        0.29656057182850489123) *
        r +
        1.7848265399172913358) *
        r +
        5.4637849111641143699) *
        r +
        6.6579046435011037772) /
      (((((((r * 2.04426310338993978564e-15 + 1.4215117583164458887e-7) * r + 1.8463183175100546818e-5) * r +
        7.868691311456132591e-4) *
        r +
        0.0148753612908506148525) *
        r +
        0.13692988092273580531) *
        r +
        0.59983220655588793769) *
        r +
        1);
  }
  return q < 0 ? -value : value;
}

// ------------------------------------------------------------------------- Student t

/** Two-sided tail P(|T| ≥ |t|) of Student's t with `df` degrees of freedom (df may be fractional). */
export function studentTTwoSided(t: number, df: number): number {
  if (Number.isNaN(t) || !(df > 0)) return Number.NaN;
  if (t === 0) return 1;
  if (!Number.isFinite(t)) return 0;
  if (df === Infinity) return 2 * normalSf(Math.abs(t));
  const t2 = t * t;
  const x = df / (df + t2);
  const y = t2 / (df + t2);
  // The p-value is I_x(df/2, 1/2). With large df, x is within 1e-6 of 1 and the continued
  // fraction in x turns each ulp of x into ~df/2 ulps of the result (1e-10 at df = 10^6);
  // y is exact, so there take 1 - I_y(1/2, df/2) from its series unless p < 0.001 (where
  // the subtraction would cost more digits than the fraction does).
  if (df > 1000) {
    const p = 1 - betaComplementSeries(y, df / 2, 0.5, Math.log1p(-y), Math.log(y));
    if (p >= 0.001) return p;
  }
  return regularizedBeta(x, df / 2, 0.5, y);
}

/** Upper tail P(T > t). */
export function studentTSf(t: number, df: number): number {
  const half = 0.5 * studentTTwoSided(t, df);
  return t >= 0 ? half : 1 - half;
}

/** CDF P(T ≤ t). */
export function studentTCdf(t: number, df: number): number {
  return studentTSf(-t, df);
}

/** Density of Student's t. */
export function studentTPdf(t: number, df: number): number {
  if (df === Infinity) return Math.exp(-0.5 * t * t - HALF_LN_2PI);
  return Math.exp(-((df + 1) / 2) * Math.log1p((t * t) / df) - 0.5 * Math.log(df) - logBeta(df / 2, 0.5));
}

/**
 * The t such that P(T > t) = q: Newton's method on the upper tail, kept inside a bracket
 * by bisection. The normal quantile is a lower bound for q < ½ (t has heavier tails).
 */
export function studentTUpperQuantile(q: number, df: number): number {
  if (!(q > 0 && q < 1) || !(df > 0)) {
    if (q === 0) return Infinity;
    if (q === 1) return -Infinity;
    return Number.NaN;
  }
  if (q === 0.5) return 0;
  if (q > 0.5) return -studentTUpperQuantile(1 - q, df);
  const z = -normalQuantile(q);
  if (df === Infinity) return z;
  let lo = z;
  let hi = Math.max(2 * z, 1);
  while (studentTSf(hi, df) > q) {
    lo = hi;
    hi *= 2;
    if (hi > 1e300) return Infinity;
  }
  let x = (lo + hi) / 2;
  for (let i = 0; i < 200; i++) {
    const f = studentTSf(x, df) - q;
    if (f === 0) return x;
    if (f > 0) lo = x;
    else hi = x;
    const pdf = studentTPdf(x, df);
    let next = x + f / pdf;
    if (!(next > lo && next < hi) || !Number.isFinite(next)) next = (lo + hi) / 2;
    if (Math.abs(next - x) <= 4 * EPS * Math.abs(next) || hi - lo <= 4 * EPS * Math.abs(hi)) return next;
    x = next;
  }
  return x;
}

// --------------------------------------------------------------------- chi-square

/** Chi-square survival function P(X > x) with k degrees of freedom. */
export function chiSquareSf(x: number, k: number): number {
  if (Number.isNaN(x) || !(k > 0)) return Number.NaN;
  return regularizedGammaQ(k / 2, x / 2);
}
