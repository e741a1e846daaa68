//! Proptest strategies for values and modules.
