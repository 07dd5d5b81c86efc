//! tryggdel-e2e
