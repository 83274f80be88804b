/* Every C test, one TEST_ENTRY(name) per line; CMake registers each with
 * CTest by reading this file.  Keep the sections per module. */

/* crypto */
TEST_ENTRY(aead_roundtrip_and_tamper)
TEST_ENTRY(keyfile_roundtrip_mode_0600)
TEST_ENTRY(keyfile_refuses_readable_by_others)
TEST_ENTRY(keyfile_rejects_damage)
TEST_ENTRY(pwhash_params_roundtrip_and_bounds)
TEST_ENTRY(identity_seal_roundtrip)

/* sync */
TEST_ENTRY(hlc_monotonic_and_bounded)
TEST_ENTRY(uuid_v7_layout)
TEST_ENTRY(changeset_roundtrip)
TEST_ENTRY(changeset_every_flipped_byte_rejected)
TEST_ENTRY(changeset_wrong_keys_and_versions)
TEST_ENTRY(changeset_vector_v1)
TEST_ENTRY(merge_rule_total_order)
TEST_ENTRY(receipt_sign_verify_and_tamper)
TEST_ENTRY(token_roundtrip_and_rejects)
/* form: tests/test_form.c */
TEST_ENTRY(form_shipped_forms_load)
TEST_ENTRY(form_load_file_errors)
TEST_ENTRY(form_broken_definitions)
TEST_ENTRY(form_definition_edge_cases)
TEST_ENTRY(form_valid_records_pass)
TEST_ENTRY(form_required_and_consent)
TEST_ENTRY(form_unknown_and_repeated_fields)
TEST_ENTRY(form_integer_rules)
TEST_ENTRY(form_date_rules)
TEST_ENTRY(form_text_utf8_and_length)
TEST_ENTRY(form_phone_format)
TEST_ENTRY(form_choice_rules)
TEST_ENTRY(form_multi_choice_rules)
TEST_ENTRY(form_gps_rules)
TEST_ENTRY(form_ref_rules)
TEST_ENTRY(form_value_from_text_conversions)
/* form-end */

/* agent */
TEST_ENTRY(store_roundtrip_serbian_names)
TEST_ENTRY(store_files_leak_nothing)
TEST_ENTRY(store_flipped_byte_names_page)
TEST_ENTRY(store_swapped_pages_detected)
TEST_ENTRY(store_flipped_wal_byte_detected)
TEST_ENTRY(store_relabelled_wal_frame_detected)
TEST_ENTRY(store_wal_recovery_after_kill9)
TEST_ENTRY(store_torn_wal_tail_recovers)
TEST_ENTRY(store_large_sort_stays_in_memory)
TEST_ENTRY(store_wrong_passphrase_refused)
TEST_ENTRY(store_passwd_rewraps_without_touching_data)
TEST_ENTRY(records_outbox_in_same_transaction)
TEST_ENTRY(records_validation_names_field)
