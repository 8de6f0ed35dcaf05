//! SMMUv3 model tests.
