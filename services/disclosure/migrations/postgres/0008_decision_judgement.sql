-- The decision maker's written judgement an approval rests on, when the assessment left a
-- condition to them (whether a victim of relation 'other' is a närstående); empty otherwise.
ALTER TABLE disclosures ADD COLUMN decision_judgement TEXT NOT NULL DEFAULT '';
