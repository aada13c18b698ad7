-- The catalog embedded in the `embed` example: the first 36 chemical
-- elements (periods 1 to 4). Built into a database at compile time by
-- examples/embed/build.rs; the binary carries the database, not this file.

PRAGMA page_size = 4096;

CREATE TABLE category (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE element (
    number   INTEGER PRIMARY KEY,
    symbol   TEXT NOT NULL UNIQUE,
    name     TEXT NOT NULL UNIQUE,
    mass     REAL NOT NULL,          -- standard atomic weight (conventional)
    period   INTEGER NOT NULL,
    grp      INTEGER NOT NULL,       -- IUPAC group 1..18
    category TEXT NOT NULL REFERENCES category(name),
    state    TEXT NOT NULL CHECK (state IN ('solid', 'liquid', 'gas'))  -- at 0 °C, 1 atm
);

CREATE INDEX element_category ON element(category);

INSERT INTO category VALUES
    ('alkali metal',          'Group 1 metals: soft, very reactive, one valence electron'),
    ('alkaline earth metal',  'Group 2 metals: two valence electrons'),
    ('transition metal',      'Groups 3 to 12: the d-block'),
    ('post-transition metal', 'Soft metals right of the transition metals'),
    ('metalloid',             'Between metals and nonmetals'),
    ('nonmetal',              'Reactive nonmetals other than the halogens'),
    ('halogen',               'Group 17: one electron short of a full shell'),
    ('noble gas',             'Group 18: full valence shell, barely reactive');

INSERT INTO element VALUES
    ( 1, 'H',  'Hydrogen',    1.008, 1,  1, 'nonmetal',              'gas'),
    ( 2, 'He', 'Helium',      4.0026, 1, 18, 'noble gas',            'gas'),
    ( 3, 'Li', 'Lithium',     6.94,   2,  1, 'alkali metal',         'solid'),
    ( 4, 'Be', 'Beryllium',   9.0122, 2,  2, 'alkaline earth metal', 'solid'),
    ( 5, 'B',  'Boron',      10.81,   2, 13, 'metalloid',            'solid'),
    ( 6, 'C',  'Carbon',     12.011,  2, 14, 'nonmetal',             'solid'),
    ( 7, 'N',  'Nitrogen',   14.007,  2, 15, 'nonmetal',             'gas'),
    ( 8, 'O',  'Oxygen',     15.999,  2, 16, 'nonmetal',             'gas'),
    ( 9, 'F',  'Fluorine',   18.998,  2, 17, 'halogen',              'gas'),
    (10, 'Ne', 'Neon',       20.180,  2, 18, 'noble gas',            'gas'),
    (11, 'Na', 'Sodium',     22.990,  3,  1, 'alkali metal',         'solid'),
    (12, 'Mg', 'Magnesium',  24.305,  3,  2, 'alkaline earth metal', 'solid'),
    (13, 'Al', 'Aluminium',  26.982,  3, 13, 'post-transition metal','solid'),
    (14, 'Si', 'Silicon',    28.085,  3, 14, 'metalloid',            'solid'),
    (15, 'P',  'Phosphorus', 30.974,  3, 15, 'nonmetal',             'solid'),
    (16, 'S',  'Sulfur',     32.06,   3, 16, 'nonmetal',             'solid'),
    (17, 'Cl', 'Chlorine',   35.45,   3, 17, 'halogen',              'gas'),
    (18, 'Ar', 'Argon',      39.95,   3, 18, 'noble gas',            'gas'),
    (19, 'K',  'Potassium',  39.098,  4,  1, 'alkali metal',         'solid'),
    (20, 'Ca', 'Calcium',    40.078,  4,  2, 'alkaline earth metal', 'solid'),
    (21, 'Sc', 'Scandium',   44.956,  4,  3, 'transition metal',     'solid'),
    (22, 'Ti', 'Titanium',   47.867,  4,  4, 'transition metal',     'solid'),
    (23, 'V',  'Vanadium',   50.942,  4,  5, 'transition metal',     'solid'),
    (24, 'Cr', 'Chromium',   51.996,  4,  6, 'transition metal',     'solid'),
    (25, 'Mn', 'Manganese',  54.938,  4,  7, 'transition metal',     'solid'),
    (26, 'Fe', 'Iron',       55.845,  4,  8, 'transition metal',     'solid'),
    (27, 'Co', 'Cobalt',     58.933,  4,  9, 'transition metal',     'solid'),
    (28, 'Ni', 'Nickel',     58.693,  4, 10, 'transition metal',     'solid'),
    (29, 'Cu', 'Copper',     63.546,  4, 11, 'transition metal',     'solid'),
    (30, 'Zn', 'Zinc',       65.38,   4, 12, 'transition metal',     'solid'),
    (31, 'Ga', 'Gallium',    69.723,  4, 13, 'post-transition metal','solid'),
    (32, 'Ge', 'Germanium',  72.630,  4, 14, 'metalloid',            'solid'),
    (33, 'As', 'Arsenic',    74.922,  4, 15, 'metalloid',            'solid'),
    (34, 'Se', 'Selenium',   78.971,  4, 16, 'nonmetal',             'solid'),
    (35, 'Br', 'Bromine',    79.904,  4, 17, 'halogen',              'liquid'),
    (36, 'Kr', 'Krypton',    83.798,  4, 18, 'noble gas',            'gas');

-- Elements per category, in atomic-number order.
CREATE VIEW category_summary AS
    SELECT category, count(*) AS elements, group_concat(symbol, ' ' ORDER BY number) AS symbols
    FROM element
    GROUP BY category
    ORDER BY elements DESC, category;

ANALYZE;
