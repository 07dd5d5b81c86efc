//! tryggdel-merkle
