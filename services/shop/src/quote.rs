//! Custom lithium battery pack quotes (the shop's old online calculator, now server-side).
//!
//! A customer gives a range in miles (or a usable energy in Wh), the voltage class their vehicle
//! uses, a cell type and a BMS option; [`quote`] sizes the pack (series × parallel cells), works
//! out its electrical figures and prices it line by line from a [`PricingTable`].
//!
//! Money is integer cents (`i64`) throughout. Electrical figures are exact integers in small
//! units (tenths of a volt, mAh, tenths of a Wh); the `f64` helpers on [`Quote`] are for display.

use std::fmt;
use std::str::FromStr;

/// Range targets we quote for, in miles (inclusive).
pub const MIN_RANGE_MILES: u32 = 5;
pub const MAX_RANGE_MILES: u32 = 150;
/// Energy targets we quote for, in Wh (inclusive).
pub const MIN_ENERGY_WH: u32 = 100;
pub const MAX_ENERGY_WH: u32 = 5000;
/// Consumption figures we accept, in Wh per mile (inclusive), and the default.
pub const MIN_WH_PER_MILE: u32 = 10;
pub const MAX_WH_PER_MILE: u32 = 80;
pub const DEFAULT_WH_PER_MILE: u32 = 25;
/// The most cells in parallel we build in the shop; bigger packs are a phone conversation.
pub const MAX_PARALLEL: u32 = 20;
/// From this many cells in parallel on, the quote warns about weight.
pub const HEAVY_PARALLEL: u32 = 10;
/// Up to this many cells in parallel, the quote asks about the controller's current draw.
pub const LOW_CURRENT_PARALLEL: u32 = 2;
/// From this full-charge voltage on (tenths of a volt), the quote adds a high-voltage note.
pub const HIGH_VOLTAGE_TENTHS: u32 = 1000;

pub const WARRANTY: &str = "1-year workmanship warranty: we repair or rebuild the pack for free \
if a weld, connection or our assembly fails within a year of pick-up. Cells and BMS carry their \
makers' warranties. Abuse, water damage, crashes and third-party chargers are not covered.";

/// A voltage class we build: the label customers use and the number of cells in series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoltageClass {
    /// The common label, e.g. `"67V"`.
    pub label: &'static str,
    /// The exact full-charge spelling when it differs from the label, e.g. `"67.2V"`.
    pub exact: Option<&'static str>,
    pub series: u32,
}

const fn class(label: &'static str, exact: Option<&'static str>, series: u32) -> VoltageClass {
    VoltageClass {
        label,
        exact,
        series,
    }
}

/// The voltage classes we build, smallest first.
pub const VOLTAGE_CLASSES: [VoltageClass; 12] = [
    class("36V", None, 10),
    class("48V", None, 13),
    class("52V", None, 14),
    class("60V", None, 16),
    class("67V", Some("67.2V"), 16),
    class("72V", None, 20),
    class("84V", None, 20),
    class("100V", Some("100.8V"), 24),
    class("126V", None, 30),
    class("134V", Some("134.4V"), 32),
    class("151V", Some("151.2V"), 36),
    class("168V", None, 40),
];

/// Looks a voltage class up by label: case, spaces and a missing trailing `V` don't matter, and
/// the exact full-charge spelling ("67.2V") works too.
pub fn voltage_class(label: &str) -> Option<&'static VoltageClass> {
    let mut key: String = label
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if key.is_empty() {
        return None;
    }
    if !key.ends_with('V') {
        key.push('V');
    }
    VOLTAGE_CLASSES
        .iter()
        .find(|c| c.label == key || c.exact == Some(key.as_str()))
}

fn voltage_class_list() -> String {
    VOLTAGE_CLASSES
        .iter()
        .map(|c| c.label)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Electrical data of a cell, in integer units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellSpec {
    pub capacity_mah: u32,
    pub nominal_mv: u32,
    pub full_mv: u32,
}

impl CellSpec {
    /// Nominal energy of one cell in tenths of a Wh (mV × mAh = µWh; 100 000 µWh = 0.1 Wh).
    pub const fn energy_wh_tenths(&self) -> u32 {
        self.nominal_mv * self.capacity_mah / 100_000
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CellType {
    C18650,
    C21700,
}

impl CellType {
    pub const fn spec(self) -> CellSpec {
        match self {
            Self::C18650 => CellSpec {
                capacity_mah: 3500,
                nominal_mv: 3600,
                full_mv: 4200,
            },
            Self::C21700 => CellSpec {
                capacity_mah: 5000,
                nominal_mv: 3600,
                full_mv: 4200,
            },
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::C18650 => "18650",
            Self::C21700 => "21700",
        }
    }
}

impl fmt::Display for CellType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CellType {
    type Err = QuoteError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "18650" => Ok(Self::C18650),
            "21700" => Ok(Self::C21700),
            _ => Err(QuoteError::UnknownCell),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BmsOption {
    Regular,
    Smart,
}

impl BmsOption {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Regular => "regular",
            Self::Smart => "smart",
        }
    }
}

impl fmt::Display for BmsOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BmsOption {
    type Err = QuoteError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("regular") {
            Ok(Self::Regular)
        } else if s.eq_ignore_ascii_case("smart") {
            Ok(Self::Smart)
        } else {
            Err(QuoteError::UnknownBms)
        }
    }
}

/// What the customer wants the pack to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    RangeMiles(u32),
    EnergyWh(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteRequest {
    pub target: Target,
    /// A label from [`VOLTAGE_CLASSES`], e.g. `"52V"`.
    pub voltage_class: String,
    pub cell: CellType,
    pub bms: BmsOption,
    /// Consumption used to size a range target and to estimate range; [`DEFAULT_WH_PER_MILE`]
    /// when `None`.
    pub wh_per_mile: Option<u32>,
}

/// A BMS price: a base plus an amount per cell in series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BmsPrice {
    pub base_cents: i64,
    pub per_series_cents: i64,
}

/// Every price the quote uses, in cents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricingTable {
    pub cell_18650_cents: i64,
    pub cell_21700_cents: i64,
    pub bms_regular: BmsPrice,
    pub bms_smart: BmsPrice,
    /// Nickel strip, insulation and wrap: a fixed part plus an amount per cell.
    pub materials_base_cents: i64,
    pub materials_per_cell_cents: i64,
    pub connectors_cents: i64,
    /// Spot welding and assembly, per cell, with a minimum charge.
    pub labor_per_cell_cents: i64,
    pub labor_minimum_cents: i64,
    pub testing_cents: i64,
    /// Share of the subtotal due up front, in percent (capped at 100).
    pub deposit_percent: u32,
}

impl PricingTable {
    pub const fn shop_default() -> Self {
        Self {
            cell_18650_cents: 450,
            cell_21700_cents: 650,
            bms_regular: BmsPrice {
                base_cents: 3500,
                per_series_cents: 150,
            },
            bms_smart: BmsPrice {
                base_cents: 8500,
                per_series_cents: 200,
            },
            materials_base_cents: 1800,
            materials_per_cell_cents: 35,
            connectors_cents: 2200,
            labor_per_cell_cents: 125,
            labor_minimum_cents: 6000,
            testing_cents: 4000,
            deposit_percent: 65,
        }
    }

    pub const fn cell_cents(&self, cell: CellType) -> i64 {
        match cell {
            CellType::C18650 => self.cell_18650_cents,
            CellType::C21700 => self.cell_21700_cents,
        }
    }

    pub const fn bms(&self, bms: BmsOption) -> BmsPrice {
        match bms {
            BmsOption::Regular => self.bms_regular,
            BmsOption::Smart => self.bms_smart,
        }
    }
}

impl Default for PricingTable {
    fn default() -> Self {
        Self::shop_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineKind {
    Cells,
    Bms,
    Materials,
    Connectors,
    Labor,
    Testing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteLine {
    pub kind: LineKind,
    pub description: String,
    pub amount_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The class's common label, e.g. `"67V"` even when asked for as "67.2 v".
    pub voltage_class: &'static str,
    pub cell: CellType,
    pub bms: BmsOption,
    pub wh_per_mile: u32,
    /// Usable energy the pack has to hold at least.
    pub needed_wh: u32,
    pub series: u32,
    pub parallel: u32,
    pub cell_count: u32,
    pub nominal_volts_tenths: u32,
    pub full_volts_tenths: u32,
    pub capacity_mah: u32,
    pub energy_wh_tenths: u32,
    /// Energy ÷ Wh per mile, rounded down.
    pub range_miles: u32,
    pub lines: Vec<QuoteLine>,
    pub subtotal_cents: i64,
    pub deposit_cents: i64,
    pub balance_cents: i64,
    pub warranty: &'static str,
    pub safety_notes: Vec<String>,
}

impl Quote {
    /// E.g. `"20S3P"`.
    pub fn configuration(&self) -> String {
        format!("{}S{}P", self.series, self.parallel)
    }

    pub fn nominal_volts(&self) -> f64 {
        f64::from(self.nominal_volts_tenths) / 10.0
    }

    pub fn full_volts(&self) -> f64 {
        f64::from(self.full_volts_tenths) / 10.0
    }

    pub fn capacity_ah(&self) -> f64 {
        f64::from(self.capacity_mah) / 1000.0
    }

    pub fn energy_wh(&self) -> f64 {
        f64::from(self.energy_wh_tenths) / 10.0
    }
}

/// Why a pack can't be quoted; the messages are meant to be read to a customer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    #[error("Pick a voltage class we build: {choices}.")]
    UnknownVoltageClass { choices: String },
    #[error("Pick a cell type we build with: 18650 or 21700.")]
    UnknownCell,
    #[error("Pick a BMS: regular or smart.")]
    UnknownBms,
    #[error("Range should be between {MIN_RANGE_MILES} and {MAX_RANGE_MILES} miles.")]
    RangeOutOfBounds,
    #[error("Energy should be between {MIN_ENERGY_WH} and {MAX_ENERGY_WH} Wh.")]
    EnergyOutOfBounds,
    #[error("Wh per mile should be between {MIN_WH_PER_MILE} and {MAX_WH_PER_MILE}.")]
    WhPerMileOutOfBounds,
    #[error("That pack would be too large to build here; call the shop.")]
    TooLarge { parallel: u32 },
}

/// Sizes and prices a pack.
pub fn quote(req: &QuoteRequest, prices: &PricingTable) -> Result<Quote, QuoteError> {
    let class =
        voltage_class(&req.voltage_class).ok_or_else(|| QuoteError::UnknownVoltageClass {
            choices: voltage_class_list(),
        })?;
    let wh_per_mile = req.wh_per_mile.unwrap_or(DEFAULT_WH_PER_MILE);
    if !(MIN_WH_PER_MILE..=MAX_WH_PER_MILE).contains(&wh_per_mile) {
        return Err(QuoteError::WhPerMileOutOfBounds);
    }
    let needed_wh = match req.target {
        Target::RangeMiles(miles) => {
            if !(MIN_RANGE_MILES..=MAX_RANGE_MILES).contains(&miles) {
                return Err(QuoteError::RangeOutOfBounds);
            }
            miles * wh_per_mile
        }
        Target::EnergyWh(wh) => {
            if !(MIN_ENERGY_WH..=MAX_ENERGY_WH).contains(&wh) {
                return Err(QuoteError::EnergyOutOfBounds);
            }
            wh
        }
    };

    let spec = req.cell.spec();
    let series = class.series;
    // Everything below is small: at most 150 mi × 80 Wh/mi = 12 000 Wh, 40S × 20P = 800 cells.
    let string_wh_tenths = series * spec.energy_wh_tenths();
    let parallel = (needed_wh * 10).div_ceil(string_wh_tenths).max(1);
    if parallel > MAX_PARALLEL {
        return Err(QuoteError::TooLarge { parallel });
    }
    let cell_count = series * parallel;
    let nominal_volts_tenths = series * spec.nominal_mv / 100;
    let full_volts_tenths = series * spec.full_mv / 100;
    let capacity_mah = parallel * spec.capacity_mah;
    let energy_wh_tenths = cell_count * spec.energy_wh_tenths();
    let range_miles = energy_wh_tenths / (wh_per_mile * 10);

    let lines = price_lines(req, prices, series, parallel);
    let subtotal_cents: i64 = lines.iter().map(|l| l.amount_cents).sum();
    let deposit_cents = percent_half_up(subtotal_cents, prices.deposit_percent.min(100));
    let balance_cents = subtotal_cents - deposit_cents;

    let mut safety_notes = Vec::new();
    if parallel >= HEAVY_PARALLEL {
        safety_notes.push(
            "Heavy pack: check the frame/shell can hold it, and mount it so it can't shift."
                .to_owned(),
        );
    }
    if parallel <= LOW_CURRENT_PARALLEL {
        safety_notes.push(format!(
            "Only {parallel} cell(s) in parallel: this pack can deliver limited current; tell us \
             your controller's amp rating so we can check it's safe."
        ));
    }
    if full_volts_tenths >= HIGH_VOLTAGE_TENTHS {
        safety_notes.push(format!(
            "High-voltage pack ({} V at full charge): dangerous to touch inside; only the shop \
             should open it.",
            tenths(i64::from(full_volts_tenths))
        ));
    }
    safety_notes.push(format!(
        "Charge only with a lithium-ion charger made for {} V ({series}S).",
        tenths(i64::from(full_volts_tenths))
    ));

    Ok(Quote {
        voltage_class: class.label,
        cell: req.cell,
        bms: req.bms,
        wh_per_mile,
        needed_wh,
        series,
        parallel,
        cell_count,
        nominal_volts_tenths,
        full_volts_tenths,
        capacity_mah,
        energy_wh_tenths,
        range_miles,
        lines,
        subtotal_cents,
        deposit_cents,
        balance_cents,
        warranty: WARRANTY,
        safety_notes,
    })
}

fn price_lines(
    req: &QuoteRequest,
    prices: &PricingTable,
    series: u32,
    parallel: u32,
) -> Vec<QuoteLine> {
    let cells = i64::from(series * parallel);
    let s = i64::from(series);
    let cell_price = prices.cell_cents(req.cell);
    let bms = prices.bms(req.bms);
    let bms_name = match req.bms {
        BmsOption::Regular => "Regular",
        BmsOption::Smart => "Smart (Bluetooth)",
    };
    let labor = (cells * prices.labor_per_cell_cents).max(prices.labor_minimum_cents);
    vec![
        QuoteLine {
            kind: LineKind::Cells,
            description: format!(
                "{cells} × {} cells ({series}S{parallel}P) at {} each",
                req.cell,
                usd(cell_price)
            ),
            amount_cents: cells * cell_price,
        },
        QuoteLine {
            kind: LineKind::Bms,
            description: format!(
                "{bms_name} BMS for {series}S: {} + {} per cell in series",
                usd(bms.base_cents),
                usd(bms.per_series_cents)
            ),
            amount_cents: bms.base_cents + s * bms.per_series_cents,
        },
        QuoteLine {
            kind: LineKind::Materials,
            description: format!(
                "Nickel strip, insulation and wrap: {} + {} per cell",
                usd(prices.materials_base_cents),
                usd(prices.materials_per_cell_cents)
            ),
            amount_cents: prices.materials_base_cents + cells * prices.materials_per_cell_cents,
        },
        QuoteLine {
            kind: LineKind::Connectors,
            description: "Connectors and leads".to_owned(),
            amount_cents: prices.connectors_cents,
        },
        QuoteLine {
            kind: LineKind::Labor,
            description: format!(
                "Labor, spot welding and assembly: {} per cell (minimum {})",
                usd(prices.labor_per_cell_cents),
                usd(prices.labor_minimum_cents)
            ),
            amount_cents: labor,
        },
        QuoteLine {
            kind: LineKind::Testing,
            description: "Testing and balancing".to_owned(),
            amount_cents: prices.testing_cents,
        },
    ]
}

/// `percent`% of `cents`, rounded to the cent with halves going up.
fn percent_half_up(cents: i64, percent: u32) -> i64 {
    (cents * i64::from(percent) + 50).div_euclid(100)
}

/// `6500` → `"$65.00"`.
pub fn usd(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}${}.{:02}", c / 100, c % 100)
}

/// `720` → `"72.0"`.
fn tenths(v: i64) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    format!("{sign}{}.{}", a / 10, a % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(target: Target, class: &str, cell: CellType, bms: BmsOption) -> QuoteRequest {
        QuoteRequest {
            target,
            voltage_class: class.to_owned(),
            cell,
            bms,
            wh_per_mile: None,
        }
    }

    fn ok(r: &QuoteRequest) -> Quote {
        quote(r, &PricingTable::shop_default()).unwrap()
    }

    fn err(r: &QuoteRequest) -> QuoteError {
        quote(r, &PricingTable::shop_default()).unwrap_err()
    }

    fn amounts(q: &Quote) -> Vec<(LineKind, i64)> {
        q.lines.iter().map(|l| (l.kind, l.amount_cents)).collect()
    }

    #[test]
    fn worked_84v_21700_regular_30_miles() {
        // 30 mi × 25 Wh/mi = 750 Wh; 20S × 3.6 V × 5.0 Ah = 360 Wh per string; ceil(750/360) = 3.
        let q = ok(&req(
            Target::RangeMiles(30),
            "84V",
            CellType::C21700,
            BmsOption::Regular,
        ));
        assert_eq!(q.voltage_class, "84V");
        assert_eq!(q.wh_per_mile, 25);
        assert_eq!(q.needed_wh, 750);
        assert_eq!((q.series, q.parallel, q.cell_count), (20, 3, 60));
        assert_eq!(q.configuration(), "20S3P");
        assert_eq!(q.nominal_volts_tenths, 720);
        assert_eq!(q.full_volts_tenths, 840);
        assert_eq!(q.capacity_mah, 15_000);
        assert_eq!(q.energy_wh_tenths, 10_800);
        assert_eq!(q.range_miles, 43); // 1080 / 25 = 43.2
        assert!((q.nominal_volts() - 72.0).abs() < 1e-9);
        assert!((q.full_volts() - 84.0).abs() < 1e-9);
        assert!((q.capacity_ah() - 15.0).abs() < 1e-9);
        assert!((q.energy_wh() - 1080.0).abs() < 1e-9);
        assert_eq!(
            amounts(&q),
            vec![
                (LineKind::Cells, 39_000),     // 60 × $6.50
                (LineKind::Bms, 6_500),        // $35 + 20 × $1.50
                (LineKind::Materials, 3_900),  // $18 + 60 × $0.35
                (LineKind::Connectors, 2_200), // $22
                (LineKind::Labor, 7_500),      // 60 × $1.25 (over the $60 minimum)
                (LineKind::Testing, 4_000),    // $40
            ]
        );
        assert_eq!(q.subtotal_cents, 63_100);
        assert_eq!(q.deposit_cents, 41_015); // 65% exactly
        assert_eq!(q.balance_cents, 22_085);
        assert_eq!(
            q.lines[0].description,
            "60 × 21700 cells (20S3P) at $6.50 each"
        );
        assert_eq!(q.warranty, WARRANTY);
        assert_eq!(
            q.safety_notes,
            vec!["Charge only with a lithium-ion charger made for 84.0 V (20S).".to_owned()]
        );
    }

    #[test]
    fn worked_126v_18650_smart_custom_consumption() {
        // 40 mi × 30 Wh/mi = 1200 Wh; 30S × 3.6 V × 3.5 Ah = 378 Wh per string; ceil(3.17) = 4.
        let mut r = req(
            Target::RangeMiles(40),
            "126V",
            CellType::C18650,
            BmsOption::Smart,
        );
        r.wh_per_mile = Some(30);
        let q = ok(&r);
        assert_eq!(q.needed_wh, 1200);
        assert_eq!((q.series, q.parallel, q.cell_count), (30, 4, 120));
        assert_eq!(q.nominal_volts_tenths, 1080);
        assert_eq!(q.full_volts_tenths, 1260);
        assert_eq!(q.capacity_mah, 14_000);
        assert_eq!(q.energy_wh_tenths, 15_120); // 120 × 12.6 Wh
        assert_eq!(q.range_miles, 50); // 1512 / 30 = 50.4
        assert_eq!(
            amounts(&q),
            vec![
                (LineKind::Cells, 54_000),     // 120 × $4.50
                (LineKind::Bms, 14_500),       // $85 + 30 × $2.00
                (LineKind::Materials, 6_000),  // $18 + 120 × $0.35
                (LineKind::Connectors, 2_200), //
                (LineKind::Labor, 15_000),     // 120 × $1.25
                (LineKind::Testing, 4_000),
            ]
        );
        assert_eq!(q.subtotal_cents, 95_700);
        assert_eq!(q.deposit_cents, 62_205);
        assert_eq!(q.balance_cents, 33_495);
        assert_eq!(q.safety_notes.len(), 2);
        assert!(q.safety_notes[0].starts_with("High-voltage pack (126.0 V at full charge)"));
    }

    #[test]
    fn worked_energy_target_48v_18650_and_half_up_deposit() {
        // 500 Wh; 13S × 3.6 V × 3.5 Ah = 163.8 Wh per string; ceil(3.05) = 4.
        let q = ok(&req(
            Target::EnergyWh(500),
            "48V",
            CellType::C18650,
            BmsOption::Regular,
        ));
        assert_eq!(q.needed_wh, 500);
        assert_eq!((q.series, q.parallel, q.cell_count), (13, 4, 52));
        assert_eq!(q.nominal_volts_tenths, 468);
        assert_eq!(q.full_volts_tenths, 546);
        assert_eq!(q.capacity_mah, 14_000);
        assert_eq!(q.energy_wh_tenths, 6_552); // 655.2 Wh
        assert_eq!(q.range_miles, 26); // 655.2 / 25 = 26.2
        assert_eq!(
            amounts(&q),
            vec![
                (LineKind::Cells, 23_400),    // 52 × $4.50
                (LineKind::Bms, 5_450),       // $35 + 13 × $1.50
                (LineKind::Materials, 3_620), // $18 + 52 × $0.35
                (LineKind::Connectors, 2_200),
                (LineKind::Labor, 6_500), // 52 × $1.25
                (LineKind::Testing, 4_000),
            ]
        );
        assert_eq!(q.subtotal_cents, 45_170);
        // 65% of $451.70 = $293.605 → $293.61 (half up).
        assert_eq!(q.deposit_cents, 29_361);
        assert_eq!(q.balance_cents, 15_809);
    }

    #[test]
    fn labor_minimum_and_small_pack_note() {
        // 10 mi × 25 = 250 Wh; 10S × 18 Wh = 180 Wh per string → 2P, 20 cells.
        let q = ok(&req(
            Target::RangeMiles(10),
            "36V",
            CellType::C21700,
            BmsOption::Regular,
        ));
        assert_eq!((q.series, q.parallel, q.cell_count), (10, 2, 20));
        assert_eq!((q.nominal_volts_tenths, q.full_volts_tenths), (360, 420));
        assert_eq!((q.capacity_mah, q.energy_wh_tenths), (10_000, 3_600));
        assert_eq!(q.range_miles, 14);
        assert_eq!(
            amounts(&q),
            vec![
                (LineKind::Cells, 13_000),
                (LineKind::Bms, 5_000),
                (LineKind::Materials, 2_500),
                (LineKind::Connectors, 2_200),
                (LineKind::Labor, 6_000), // 20 × $1.25 = $25 → $60 minimum
                (LineKind::Testing, 4_000),
            ]
        );
        assert_eq!(q.subtotal_cents, 32_700);
        assert_eq!((q.deposit_cents, q.balance_cents), (21_255, 11_445));
        assert!(q.safety_notes[0].starts_with("Only 2 cell(s) in parallel"));
    }

    #[test]
    fn parallel_rounds_up_only_past_an_exact_fit() {
        // 84V 21700: 360 Wh per string.
        let at = |wh| {
            ok(&req(
                Target::EnergyWh(wh),
                "84V",
                CellType::C21700,
                BmsOption::Regular,
            ))
            .parallel
        };
        assert_eq!(at(720), 2);
        assert_eq!(at(721), 3);
        assert_eq!(at(100), 1);
    }

    #[test]
    fn parallel_cap() {
        // 36V 21700: 180 Wh per string; 20P = 3600 Wh is the biggest we build.
        let r = |wh| {
            req(
                Target::EnergyWh(wh),
                "36V",
                CellType::C21700,
                BmsOption::Smart,
            )
        };
        let q = ok(&r(3600));
        assert_eq!((q.parallel, q.cell_count), (20, 200));
        assert!(q.safety_notes[0].starts_with("Heavy pack"));
        assert_eq!(err(&r(3601)), QuoteError::TooLarge { parallel: 21 });
        // 36V 18650 at 5000 Wh: 126 Wh per string → 40P.
        let e = err(&req(
            Target::EnergyWh(5000),
            "36V",
            CellType::C18650,
            BmsOption::Regular,
        ));
        assert_eq!(e, QuoteError::TooLarge { parallel: 40 });
        assert_eq!(
            e.to_string(),
            "That pack would be too large to build here; call the shop."
        );
        // The biggest range ask is still buildable at 168V: 12 000 Wh / 720 Wh → 17P.
        let mut big = req(
            Target::RangeMiles(150),
            "168V",
            CellType::C21700,
            BmsOption::Smart,
        );
        big.wh_per_mile = Some(80);
        assert_eq!(ok(&big).parallel, 17);
    }

    #[test]
    fn errors() {
        let base = req(
            Target::RangeMiles(30),
            "84V",
            CellType::C21700,
            BmsOption::Regular,
        );
        let mut r = base.clone();
        r.voltage_class = "90V".into();
        assert_eq!(
            err(&r).to_string(),
            "Pick a voltage class we build: 36V, 48V, 52V, 60V, 67V, 72V, 84V, 100V, 126V, 134V, \
             151V, 168V."
        );
        r.voltage_class = String::new();
        assert!(matches!(err(&r), QuoteError::UnknownVoltageClass { .. }));

        for miles in [4, 151, 0] {
            let mut r = base.clone();
            r.target = Target::RangeMiles(miles);
            assert_eq!(err(&r), QuoteError::RangeOutOfBounds);
        }
        assert_eq!(
            QuoteError::RangeOutOfBounds.to_string(),
            "Range should be between 5 and 150 miles."
        );
        for miles in [5, 150] {
            let mut r = base.clone();
            r.target = Target::RangeMiles(miles);
            assert!(quote(&r, &PricingTable::shop_default()).is_ok());
        }

        for wh in [99, 5001] {
            let mut r = base.clone();
            r.voltage_class = "168V".into();
            r.target = Target::EnergyWh(wh);
            assert_eq!(err(&r), QuoteError::EnergyOutOfBounds);
        }
        assert_eq!(
            QuoteError::EnergyOutOfBounds.to_string(),
            "Energy should be between 100 and 5000 Wh."
        );

        for whpm in [9, 81] {
            let mut r = base.clone();
            r.wh_per_mile = Some(whpm);
            assert_eq!(err(&r), QuoteError::WhPerMileOutOfBounds);
        }
        assert_eq!(
            QuoteError::WhPerMileOutOfBounds.to_string(),
            "Wh per mile should be between 10 and 80."
        );
    }

    #[test]
    fn voltage_class_labels() {
        assert_eq!(voltage_class("67V").map(|c| c.series), Some(16));
        assert_eq!(voltage_class(" 67.2 v ").map(|c| c.label), Some("67V"));
        assert_eq!(voltage_class("100.8V").map(|c| c.series), Some(24));
        assert_eq!(voltage_class("52").map(|c| c.series), Some(14));
        assert_eq!(voltage_class("134.4V").map(|c| c.series), Some(32));
        assert_eq!(voltage_class("151.2").map(|c| c.series), Some(36));
        assert_eq!(voltage_class("V"), None);
        assert_eq!(voltage_class("84VV"), None);
        let series: Vec<u32> = VOLTAGE_CLASSES.iter().map(|c| c.series).collect();
        assert_eq!(series, [10, 13, 14, 16, 16, 20, 20, 24, 30, 32, 36, 40]);
    }

    #[test]
    fn parse_cell_and_bms() {
        assert_eq!("18650".parse::<CellType>(), Ok(CellType::C18650));
        assert_eq!(" 21700 ".parse::<CellType>(), Ok(CellType::C21700));
        let e = "26650".parse::<CellType>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "Pick a cell type we build with: 18650 or 21700."
        );
        assert_eq!("regular".parse::<BmsOption>(), Ok(BmsOption::Regular));
        assert_eq!("Smart".parse::<BmsOption>(), Ok(BmsOption::Smart));
        assert_eq!(
            "fancy".parse::<BmsOption>().unwrap_err().to_string(),
            "Pick a BMS: regular or smart."
        );
        assert_eq!(CellType::C21700.to_string(), "21700");
        assert_eq!(BmsOption::Smart.to_string(), "smart");
    }

    #[test]
    fn money_helpers() {
        assert_eq!(usd(0), "$0.00");
        assert_eq!(usd(35), "$0.35");
        assert_eq!(usd(63_100), "$631.00");
        assert_eq!(usd(-150), "-$1.50");
        assert_eq!(percent_half_up(45_170, 65), 29_361);
        assert_eq!(percent_half_up(10, 65), 7); // 6.5 → 7
        assert_eq!(percent_half_up(1, 65), 1); // 0.65 → 1
        assert_eq!(percent_half_up(63_100, 100), 63_100);
    }

    #[test]
    fn deposit_percent_is_data() {
        let prices = PricingTable {
            deposit_percent: 50,
            ..PricingTable::shop_default()
        };
        let q = quote(
            &req(
                Target::RangeMiles(30),
                "84V",
                CellType::C21700,
                BmsOption::Regular,
            ),
            &prices,
        )
        .unwrap();
        assert_eq!((q.deposit_cents, q.balance_cents), (31_550, 31_550));
    }
}
