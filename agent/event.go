package agent

import "github.com/mamori-agent/mamori/wire"

// The record schema lives in package wire; these names keep the agent's
// code and its tests short.
type (
	// Event is one thing the agent observed or decided (wire.Event).
	Event          = wire.Event
	Violation      = wire.Violation
	DecisionRecord = wire.DecisionRecord
	AgentRecord    = wire.AgentRecord
	OpenState      = wire.OpenState
	OpenDevice     = wire.OpenDevice
	OpenVolume     = wire.OpenVolume
	MediumRecord   = wire.MediumRecord
	MediumUnit     = wire.MediumUnit
)

// Event types (wire.Type*).
const (
	TypeAgentStarted        = wire.TypeAgentStarted
	TypeAgentStopped        = wire.TypeAgentStopped
	TypeAgentUncleanStop    = wire.TypeAgentUncleanStop
	TypeDeviceAdded         = wire.TypeDeviceAdded
	TypeDeviceRemoved       = wire.TypeDeviceRemoved
	TypeVolumeMounted       = wire.TypeVolumeMounted
	TypeVolumeUnmounted     = wire.TypeVolumeUnmounted
	TypeViolation           = wire.TypeViolation
	TypeAuditDamaged        = wire.TypeAuditDamaged
	TypeAuditGap            = wire.TypeAuditGap
	TypeConfigReloaded      = wire.TypeConfigReloaded
	TypeConfigReloadFailed  = wire.TypeConfigReloadFailed
	TypeMetricsUnavailable  = wire.TypeMetricsUnavailable
	TypeLocalAPIUnavailable = wire.TypeLocalAPIUnavailable
)

// Violation kinds (wire.Kind*).
const (
	KindStorageUnapproved = wire.KindUSBStorageUnapproved
	KindDeviceUnapproved  = wire.KindUSBDeviceUnapproved
	KindApprovalExpired   = wire.KindUSBApprovalExpired
	KindApprovalNotYet    = wire.KindUSBApprovalNotYet
	KindMediaUnencrypted  = wire.KindMediaUnencrypted
)
