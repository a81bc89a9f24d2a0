//! TEMP stub
