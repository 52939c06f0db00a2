from django.urls import path

from billing.api import views

urlpatterns = [
    path("operations", views.OperationListView.as_view()),
    path("operations/<uuid:operation_id>", views.OperationDetailView.as_view()),
    path("contracts/<uuid:contract_id>/operations", views.ContractOperationListView.as_view()),
    path("contracts/<uuid:contract_id>/balance", views.ContractBalanceView.as_view()),
]
