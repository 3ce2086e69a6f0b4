-- The services the shop offers; prices are a starting point, the estimate sets the real one.
CREATE TABLE service_offerings (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    starting_price_cents BIGINT NOT NULL CHECK (starting_price_cents >= 0),
    currency TEXT NOT NULL DEFAULT 'USD',
    sort_order INTEGER NOT NULL DEFAULT 0,
    active BOOLEAN NOT NULL DEFAULT TRUE
);

INSERT INTO service_offerings (code, name, description, starting_price_cents, sort_order) VALUES
  ('diagnostics', 'Diagnostics', 'Full electrical and mechanical check: battery health, BMS logs, controller errors, motor and bearings.', 4900, 1),
  ('battery', 'Battery service', 'Cell testing, balancing, repair of damaged or swollen packs, BMS replacement.', 8900, 2),
  ('controller', 'Controller repair', 'MOSFET and capacitor replacement, board-level controller repair, hall sensor faults.', 9900, 3),
  ('lighting', 'Lighting', 'Headlights, tail and brake lights, LED strips and turn signals, installed and wired.', 3900, 4),
  ('firmware', 'Firmware', 'Firmware updates, speed and regen tuning, wheel and app pairing fixes.', 2900, 5),
  ('waterproofing', 'Waterproofing', 'Sealing shells, connectors and charge ports against Baltimore rain.', 5900, 6),
  ('wiring', 'Wiring', 'Harness repair, connector upgrades (XT60/XT90/GX16), charge port replacement.', 4900, 7),
  ('accessories', 'Accessories', 'Mounts, bumpers, pads, fenders and stands fitted at the bench.', 1900, 8),
  ('custom_build', 'Custom builds', 'Custom battery packs (18650/21700) and full conversions, quoted per build.', 19900, 9);
