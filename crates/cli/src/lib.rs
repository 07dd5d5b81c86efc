//! tryggdel
